"""`bindery federate`: one front for several Binder sites (bindery or BinderHub members)."""
