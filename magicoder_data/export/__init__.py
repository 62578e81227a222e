"""Export: a Hub-ready folder of parquet shards and a dataset card, from a run's kept samples.

`datasets.load_dataset(DIR)` loads it with no other arguments (the first config is the default)
and the Hub renders it. Configs:

- `oss-instruct`: the schema of ise-uiuc/Magicoder-OSS-Instruct-75K
  (lang, raw_index, index, seed, openai_fingerprint, problem, solution);
- `sft`: chat `messages` in Magicoder's wording;
- `lintseq`: instruction plus its LintSeq edit sequence.

`stage` holds the export and push stages and the rows they read, `writer` writes the parquet
shards and the folder, `card` the dataset card, `push` uploads to the Hub.
"""
