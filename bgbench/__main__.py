from bgbench.cli import main

raise SystemExit(main())
