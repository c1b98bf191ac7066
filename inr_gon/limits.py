"""Size limits, one home for each: bounds that keep a typo or a hostile file from asking for
terabytes, each far above any real use."""

MAX_TRAIN_SIDE = 8192  # --size of a training run, per side (config.height, config.width)
MAX_RENDER_SIDE = 16384  # a rendered or sampled image (--size of render, sample, interpolate), per side
MAX_OBSERVE_SCALE = 16  # --observe-scales: a view box-downsampled 16x (16^2 fine points a pixel)
MAX_OBSERVE_FACTOR = 8  # an input pixel observed as the mean of at most 8 x 8 fine points
MAX_PIXELS = 64_000_000  # 64 megapixels: a decoded input image, or a training size H x W
MAX_RENDER_PIXELS = 2**27  # a whole-photo render (--scale): 8-bit output + its PNG bytes under ~1 GB
MAX_RESOLUTION = 2048  # a marching-cubes grid R (mesh/eval --resolution): R^3 float32, 32 GiB at 2048
# A local run (--model local) encodes an input up to this side in one dense solve of
# (side^2 C)^2 values (38 MB at 32, RGB); larger inputs go through tiles (inference/superres.py).
LOCAL_DIRECT_SIDE = 32
MAX_VIEW_SIDE = 4096  # an explore view (zoom, walk, sample), per side: a screen is smaller
MAX_UPLOAD_BYTES = 32 * 2**20  # an image uploaded to explore, before decoding
MAX_UPLOAD_PIXELS = 16_000_000  # an uploaded image's W x H, read from its header before decoding
