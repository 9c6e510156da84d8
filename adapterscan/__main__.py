from adapterscan.cli.app import main

main()
