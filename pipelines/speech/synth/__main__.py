"""`python -m pipelines.speech.synth`: synthetic speakers of the digits."""

from pipelines.speech.synth import main

raise SystemExit(main())
