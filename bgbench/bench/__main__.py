import sys

from bgbench.bench import available, run

if len(sys.argv) < 2 or sys.argv[1] in ("-h", "--help"):
    print(f"usage: python -m bgbench.bench NAME [args]   (NAME: {', '.join(available())})")
    raise SystemExit(0 if len(sys.argv) >= 2 else 2)
raise SystemExit(run(sys.argv[1], sys.argv[2:]))
