"""The local inference server: one model version over the Open Inference Protocol V2 (KServe's).

``python -m mllc.serve --name iris --env staging --version v1.0.0 --model-md5 MD5
--model-file PATH --port 8081`` serves ``PATH`` once its md5 matches the registry's.
Modules:

- :mod:`mllc.serve.protocol`: V2 request decoding and response encoding (pure).
- :mod:`mllc.serve.model`: hash-checked loading, the feature schema, predict.
- :mod:`mllc.serve.app`: routing, auth and error mapping, independent of the transport;
  :mod:`mllc.serve.batching` predicts concurrent requests for one model together.
- :mod:`mllc.serve.transport`: the threaded HTTP/1.1 server, its bounds and draining stop;
  :mod:`mllc.serve.handler` reads and answers a connection's requests, within the
  bounds of :mod:`mllc.serve.limits`.
- :mod:`mllc.serve.server`: ``main``: arguments, start-up checks, signals, the state file.
- :mod:`mllc.serve.capture`: bounded, rotated capture of requests for monitoring.
- :mod:`mllc.serve.rollout`: a candidate beside the stable version (canary or shadow):
  routing, comparisons off the response path, the rollout file; its numbers
  (latency percentiles, prediction counts) in :mod:`mllc.serve.stats`.

Importing this package or :mod:`mllc.serve.server` loads no numpy, pandas or
scikit-learn: the CLI can import ``main`` without slowing its start.
"""
