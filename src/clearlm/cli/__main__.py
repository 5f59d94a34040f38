from clearlm.cli import main

main()
