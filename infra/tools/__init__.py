"""Tools that read the config or the program: plan and prices, validate, the deployer policy, the Terraform-plan
export, the test helper (run_stack). May import every other room."""
