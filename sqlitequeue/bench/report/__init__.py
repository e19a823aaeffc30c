"""Reports rendered from results folders only: the workloads and the failure-recovery sections."""
