from inr_gon.cli.app import main

main()
