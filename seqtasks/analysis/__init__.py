"""Look inside trained recurrent models: unit activations and next-token guesses (`units`, `page`),
the text properties units are compared with (`properties`), gradient flow through time
(`gradient_flow`) and gate saturation (`saturation`). All of them read the fused models through
the reference cells' equations with the same weights (`ReferenceRNN.like`), so every cell type,
plugin cells on `RecurrentCell` included, can be inspected."""
