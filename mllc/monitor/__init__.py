"""Monitoring mechanics: reading a batch (:mod:`~mllc.monitor.batch`), drift statistics
(:mod:`~mllc.monitor.drift`) and the report's pages (:mod:`~mllc.monitor.render`,
:mod:`~mllc.monitor.text`). The check itself is the operation :mod:`mllc.ops.monitor`;
the report's model is :mod:`mllc.observe.monitoring`.
"""
