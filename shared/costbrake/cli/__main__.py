from costbrake.cli import main

main()
