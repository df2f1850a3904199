"""Stand-in for `vllm.distributed`: the weight-sync group OpenRLHF builds between its policy and its engines."""
