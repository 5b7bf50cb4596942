import MigsnapCLI

Migsnap.main()
