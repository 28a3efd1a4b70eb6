"""Pure numpy/scipy statistics: arrays in, frozen dataclasses out. No pandas, no I/O, no printing."""
