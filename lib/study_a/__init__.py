"""Study A end to end, as its chapter calls it: data and split (``data``), the neural ODE models
and their explanation (``ode``), the U-Net subset comparison of Table I (``comparison``), the
verdicts (``verdict``), the names of the measures they read (``measures``), and the reading of
the three targets together (``across_targets``)."""
