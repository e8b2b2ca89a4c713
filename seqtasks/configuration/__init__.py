"""Config machinery: composing Hydra configs with errors that name the fix (compose), the one
registry mechanism for every kind of component (registry), checking values against constructors'
annotations (validation), and loading plugins (plugins)."""
