"""The A1111 adapter: the only code that touches webui objects (`modules`, `p`, `shared`)."""
