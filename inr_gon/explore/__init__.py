"""`inr-gon explore`: a local web page to look into a trained run (gallery, zoom, walks, uploads).

`space` holds what the page asks of a run (no web code), `images` the image-run answers,
`server` the Starlette app around them; the page itself is plain HTML/JS/CSS in `static/`.
"""
