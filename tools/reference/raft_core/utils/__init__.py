# Vendored verbatim from https://github.com/princeton-vl/RAFT/blob/2888e15a51fa41140771d3f498ed8023cff098d1/core/utils/__init__.py
# (BSD-3-Clause, LICENSE beside it). The reference for t2v's RAFT (tests/eval_raft.rs, made by
# tools/reference/vbench_fixtures.py --part raft). Do not edit.
