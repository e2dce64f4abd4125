"""Tables in, model + baselines out: table sources (in memory, Parquet streaming), transforms, baselines and
the run record behind `glassloop fit | resume | predict`. Library code only; the commands live in glassloop.cli."""
