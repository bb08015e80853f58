"""ssmlab: state space models for sequential recommendation, to learn from and to use.

Subpackages (who may import whom, SPEC.md): ``ssm`` (the math) <- ``layers`` <- ``models``
<- ``train`` <- ``cli``; ``train`` also uses ``data`` and ``metrics``; ``viz`` uses ``ssm`` only.
``bench`` (the benchmarks) uses all of them; only ``cli`` and ``benchmarks/`` import it.
"""

__version__ = "0.1.0"
