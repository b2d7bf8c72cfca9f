"""Other ways to run the engine contract (:class:`plural_kit.engine.Engine`), not other engines.

``plural_kit.backends.ray``
    :class:`~plural_kit.backends.ray.RayEngine`: the same methods on a Ray cluster (Ray Data
    actors, each running a :class:`~plural_kit.engine.ForwardEngine`), plus resumable runs
    streamed to sharded Parquet. ``pip install 'plural_kit[ray]'``.
``plural_kit.backends.vllm``
    :class:`~plural_kit.backends.vllm.VLLMEngine`: generation and answer-option
    log-probabilities on a vLLM ``LLM``. ``pip install 'plural_kit[vllm]'`` (needs a GPU).

Neither library is imported until a backend is used.
"""
