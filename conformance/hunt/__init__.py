"""`xent-conformance hunt`: search for the input on which a framework is worst, measured as
its error relative to the tolerance the mathematics allows, and write it out as a case."""
