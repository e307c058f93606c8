"""The public-API fuzz's known failures: the defects it found, each removed by the commit that fixes it.

`KNOWN` maps (entry, argument) to the first failure (the value, and what happened); `test_fuzz.py` marks those
cases xfail (strict: a fixed pair must leave the list). `VALID_KNOWN`: entries whose valid call fails. `SKIPPED`:
pairs that cannot run before their fix (the process aborts, or the call leaks a pipe or a thread that fails the
test after it).
"""

KNOWN: dict[tuple[str, str], str] = {
    ("jax_patterns.lm.Engine", "temp"): "1e+39: raised RuntimeWarning: overflow encountered in cast",
    ("jax_patterns.lm.Engine", "cfg_coef"): "1e+39: raised RuntimeWarning: overflow encountered in cast",
    ("jax_patterns.lm.Sampling", "temp"): "1e+39: raised RuntimeWarning: overflow encountered in cast",
    ("jax_patterns.lm.Sampling", "cfg_coef"): "1e+39: raised RuntimeWarning: overflow encountered in cast",
    ("jax_patterns.lm.generate", "temp"): "1e+39: raised RuntimeWarning: overflow encountered in cast",
    ("jax_patterns.lm.generate", "cfg_coef"): "1e+39: raised RuntimeWarning: overflow encountered in cast",
    ("jax_patterns.lm.magnet_generate", "temp"): "1e+39: raised RuntimeWarning: overflow encountered in cast",
    ("jax_patterns.lm.magnet_generate", "max_cfg_coef"): "1e+39: raised RuntimeWarning: overflow encountered in cast",
    ("jax_patterns.lm.stream", "temp"): "1e+39: raised RuntimeWarning: overflow encountered in cast",
    ("jax_patterns.lm.stream", "cfg_coef"): "1e+39: raised RuntimeWarning: overflow encountered in cast",
    ("jax_patterns.models.MusicGen.engine", "temp"): "1e+39: raised RuntimeWarning: overflow encountered in cast",
    ("jax_patterns.models.MusicGen.generate", "temp"): "1e+39: raised RuntimeWarning: overflow encountered in cast",
    ("jax_patterns.CoarseFirstPattern", "n_q"): "2147483648: raised MemoryError:",
    (
        "jax_patterns.CoarseFirstPattern",
        "delays",
    ): "[0, 2147483648]: was accepted (returned CoarseFirstPattern(n_q=3, delays=(0, 2147483648",
    (
        "jax_patterns.CoarseFirstPattern.from_audiocraft",
        "obj",
    ): "None: raised AttributeError: 'NoneType' object has no attribute 'n_q'",
    (
        "jax_patterns.CoarseFirstPattern.get_pattern",
        "timesteps",
    ): "9223372036854775808: raised OverflowError: Python int too large to convert to C long",
    (
        "jax_patterns.CoarseFirstPattern.reference_layout",
        "timesteps",
    ): "None: raised TypeError without naming `timesteps`: 'NoneType' object cannot ",
    (
        "jax_patterns.CoarseFirstPattern.to_audiocraft",
        "module",
    ): "None: raised AttributeError: 'NoneType' object has no attribute 'VALLEPatter",
    ("jax_patterns.CodebooksPatternProvider", "n_q"): "2147483648: raised MemoryError:",
    (
        "jax_patterns.CodebooksPatternProvider",
        "cached",
    ): "None: raised AttributeError: attribute '__weakref__' of 'Pattern' objects is",
    (
        "jax_patterns.CodebooksPatternProvider.get_pattern",
        "timesteps",
    ): "0: raised AttributeError: attribute '__weakref__' of 'Pattern' objects is",
    ("jax_patterns.DelayedPatternProvider", "n_q"): "2147483648: raised MemoryError:",
    (
        "jax_patterns.DelayedPatternProvider",
        "delays",
    ): "[0, 2147483648]: was accepted (returned DelayedPatternProvider(n_q=2, delays=(0, 214748",
    (
        "jax_patterns.DelayedPatternProvider",
        "flatten_first",
    ): "2147483648: was accepted (returned DelayedPatternProvider(n_q=2, delays=(0, 1), fl",
    (
        "jax_patterns.DelayedPatternProvider",
        "empty_initial",
    ): "2147483648: was accepted (returned DelayedPatternProvider(n_q=2, delays=(0, 1), fl",
    (
        "jax_patterns.DelayedPatternProvider.from_audiocraft",
        "obj",
    ): "None: raised AttributeError: 'NoneType' object has no attribute 'n_q'",
    (
        "jax_patterns.DelayedPatternProvider.get_pattern",
        "timesteps",
    ): "9223372036854775808: raised OverflowError: Python int too large to convert to C long",
    (
        "jax_patterns.DelayedPatternProvider.reference_layout",
        "timesteps",
    ): "None: raised TypeError without naming `timesteps`: '<' not supported between",
    (
        "jax_patterns.DelayedPatternProvider.to_audiocraft",
        "module",
    ): "None: raised AttributeError: 'NoneType' object has no attribute 'DelayedPatt",
    (
        "jax_patterns.LayoutCoord",
        "t",
    ): "2147483648: raised ValueError without naming `t`: coordinates outside q in [0, n_q",
    (
        "jax_patterns.LengthRule.num_steps",
        "lengths",
    ): "None: raised TypeError without naming `lengths`: int() argument must be a st",
    (
        "jax_patterns.LengthRule.ref_steps",
        "lengths",
    ): "None: raised TypeError without naming `lengths`: int() argument must be a st",
    ("jax_patterns.LengthRule.ref_steps", "keep_only_valid_steps"): "None: was accepted (returned ndarray(2,) int64)",
    (
        "jax_patterns.LengthRule.starts_with_special",
        "lengths",
    ): "None: raised TypeError without naming `lengths`: int() argument must be a st",
    (
        "jax_patterns.MusicLMPattern",
        "n_q",
    ): "2147483648: was accepted (returned MusicLMPattern(n_q=2147483648, group_by=2))",
    (
        "jax_patterns.MusicLMPattern.from_audiocraft",
        "obj",
    ): "None: raised AttributeError: 'NoneType' object has no attribute 'n_q'",
    (
        "jax_patterns.MusicLMPattern.get_pattern",
        "timesteps",
    ): "9223372036854775808: raised OverflowError: Python int too large to convert to C long",
    (
        "jax_patterns.MusicLMPattern.reference_layout",
        "timesteps",
    ): "None: raised TypeError without naming `timesteps`: 'NoneType' object cannot ",
    (
        "jax_patterns.MusicLMPattern.to_audiocraft",
        "module",
    ): "None: raised AttributeError: 'NoneType' object has no attribute 'MusicLMPatt",
    ("jax_patterns.Packed", "tokens"): "None: raised AttributeError: 'NoneType' object has no attribute 'shape'",
    ("jax_patterns.Packed", "targets"): "None: was accepted (returned [array([[ 1,  2,  3,  4],",
    ("jax_patterns.Packed", "segment_ids"): "None: was accepted (returned [array([[ 1,  2,  3,  4],",
    ("jax_patterns.Packed", "positions"): "None: was accepted (returned [array([[ 1,  2,  3,  4],",
    (
        "jax_patterns.Packed",
        "placements",
    ): "None: raised TypeError without naming `placements`: 'NoneType' object is not",
    ("jax_patterns.Packed", "provider"): "None: raised AttributeError: 'NoneType' object has no attribute 'n_q'",
    ("jax_patterns.Packed", "keep_only_valid_steps"): "None: was accepted (returned [array([[ 1,  2,  3,  4],",
    ("jax_patterns.ParallelPatternProvider", "n_q"): "2147483648: raised MemoryError:",
    (
        "jax_patterns.ParallelPatternProvider",
        "empty_initial",
    ): "2147483648: was accepted (returned ParallelPatternProvider(n_q=2, empty_initial=21",
    (
        "jax_patterns.ParallelPatternProvider.from_audiocraft",
        "obj",
    ): "None: raised AttributeError: 'NoneType' object has no attribute 'n_q'",
    (
        "jax_patterns.ParallelPatternProvider.get_pattern",
        "timesteps",
    ): "9223372036854775808: raised OverflowError: Python int too large to convert to C long",
    (
        "jax_patterns.ParallelPatternProvider.reference_layout",
        "timesteps",
    ): "None: raised TypeError without naming `timesteps`: '<' not supported between",
    (
        "jax_patterns.ParallelPatternProvider.to_audiocraft",
        "module",
    ): "None: raised AttributeError: 'NoneType' object has no attribute 'Pattern'",
    (
        "jax_patterns.Pattern.derived",
        "name",
    ): "ndarray(0,: raised TypeError without naming `name`: unhashable type: 'numpy.ndarra",
    ("jax_patterns.Pattern.derived", "make"): "None: was accepted (returned 4)",
    (
        "jax_patterns.Pattern.from_coords",
        "coords",
    ): "None: raised TypeError without naming `coords`: cannot unpack non-iterable N",
    (
        "jax_patterns.Pattern.from_coords",
        "provider",
    ): "True: was accepted (returned Pattern(n_q=2, timesteps=4, sequence_steps=6, s",
    (
        "jax_patterns.Pattern.from_coords",
        "validate",
    ): "None: was accepted (returned Pattern(n_q=2, timesteps=4, sequence_steps=6, s",
    (
        "jax_patterns.Pattern.from_stream",
        "card",
    ): "2147483648: raised ValueError without naming `card`: `offsets`[1]=100 + card - 1 =",
    (
        "jax_patterns.Pattern.to_stream",
        "card",
    ): "2147483648: raised ValueError without naming `card`: `offsets`[1]=100 + card - 1 =",
    (
        "jax_patterns.Pattern.with_provider",
        "provider",
    ): "None: raised AttributeError: attribute '__weakref__' of 'Pattern' objects is",
    ("jax_patterns.UnrolledPatternProvider", "n_q"): "2147483648: raised MemoryError:",
    (
        "jax_patterns.UnrolledPatternProvider",
        "flattening",
    ): "[0, 1, 2147483648]: was accepted (returned UnrolledPatternProvider(n_q=3, flattening=(0, 1",
    (
        "jax_patterns.UnrolledPatternProvider",
        "delays",
    ): "[0, 1, 2147483648]: raised ValueError without naming `delays`: codebooks 1 and 2 are flatt",
    (
        "jax_patterns.UnrolledPatternProvider.from_audiocraft",
        "obj",
    ): "None: raised AttributeError: 'NoneType' object has no attribute 'n_q'",
    (
        "jax_patterns.UnrolledPatternProvider.get_pattern",
        "timesteps",
    ): "9223372036854775808: raised OverflowError: Python int too large to convert to C long",
    (
        "jax_patterns.UnrolledPatternProvider.num_virtual_steps",
        "timesteps",
    ): "None: raised TypeError without naming `timesteps`: unsupported operand type(",
    (
        "jax_patterns.UnrolledPatternProvider.reference_layout",
        "timesteps",
    ): "None: raised TypeError without naming `timesteps`: unsupported operand type(",
    (
        "jax_patterns.UnrolledPatternProvider.to_audiocraft",
        "module",
    ): "None: raised AttributeError: 'NoneType' object has no attribute 'UnrolledPat",
    ("jax_patterns.VALLEPattern", "n_q"): "2147483648: raised MemoryError:",
    (
        "jax_patterns.VALLEPattern",
        "delays",
    ): "[0, 2147483648]: was accepted (returned VALLEPattern(n_q=3, delays=(0, 2147483648)))",
    (
        "jax_patterns.VALLEPattern.from_audiocraft",
        "obj",
    ): "None: raised AttributeError: 'NoneType' object has no attribute 'n_q'",
    (
        "jax_patterns.VALLEPattern.get_pattern",
        "timesteps",
    ): "9223372036854775808: raised OverflowError: Python int too large to convert to C long",
    (
        "jax_patterns.VALLEPattern.reference_layout",
        "timesteps",
    ): "None: raised TypeError without naming `timesteps`: 'NoneType' object cannot ",
    (
        "jax_patterns.VALLEPattern.to_audiocraft",
        "module",
    ): "None: raised AttributeError: 'NoneType' object has no attribute 'VALLEPatter",
    ("jax_patterns.lm.CodecLM", "n_q"): "46341: was accepted (returned ndarray(1, 46341, 4, 8) float32)",
    (
        "jax_patterns.lm.CodecLM",
        "dim",
    ): "2147483648: raised JaxRuntimeError: RESOURCE_EXHAUSTED: Out of memory allocating 8",
    ("jax_patterns.lm.CodecLM", "num_layers"): "2147483648: raised Hang: no answer after 8.0 s",
    (
        "jax_patterns.lm.CodecLM",
        "max_len",
    ): "2147483648: raised JaxRuntimeError: RESOURCE_EXHAUSTED: Out of memory allocating 6",
    ("jax_patterns.lm.CodecLM", "subcodes_context"): "2147483648: was accepted (returned ndarray(1, 2, 4, 8) float32)",
    ("jax_patterns.lm.CodecLM", "rngs"): "None: raised AttributeError: 'NoneType' object has no attribute 'params'",
    (
        "jax_patterns.lm.CodecLM.__call__",
        "seq",
    ): "None: raised AttributeError: 'NoneType' object has no attribute 'shape'",
    (
        "jax_patterns.lm.CodecLM.__call__",
        "segment_ids",
    ): "True: raised AttributeError: 'bool' object has no attribute 'shape'",
    (
        "jax_patterns.lm.CodecLM.__call__",
        "positions",
    ): "True: raised AttributeError: 'bool' object has no attribute 'shape'",
    (
        "jax_patterns.lm.CodecLM.__call__",
        "stage",
    ): "True: raised TypePromotionError without naming `stage`: Input dtypes ('<clas",
    (
        "jax_patterns.lm.CodecLM.decode",
        "cache",
    ): "None: raised TypeError without naming `cache`: 'NoneType' object is not subs",
    (
        "jax_patterns.lm.CodecLM.decode",
        "tokens",
    ): "None: raised AttributeError: 'NoneType' object has no attribute 'shape'",
    (
        "jax_patterns.lm.CodecLM.hidden",
        "seq",
    ): "None: raised AttributeError: 'NoneType' object has no attribute 'shape'",
    (
        "jax_patterns.lm.CodecLM.hidden",
        "segment_ids",
    ): "True: raised AttributeError: 'bool' object has no attribute 'shape'",
    (
        "jax_patterns.lm.CodecLM.hidden",
        "positions",
    ): "True: raised AttributeError: 'bool' object has no attribute 'shape'",
    (
        "jax_patterns.lm.CodecLM.init_cache",
        "batch",
    ): "2147483648: raised JaxRuntimeError: RESOURCE_EXHAUSTED: Out of memory allocating 1",
    (
        "jax_patterns.lm.CodecLM.init_cache",
        "dtype",
    ): "None: was accepted (returned {'keys': [Array([[[[0., 0., 0., 0.],",
    (
        "jax_patterns.lm.CodecLM.init_cache",
        "per_row",
    ): "None: was accepted (returned {'keys': [Array([[[[0., 0., 0., 0.],",
    (
        "jax_patterns.lm.Engine",
        "step_fn",
    ): "<function Obj._extra: raised TypeError without naming `step_fn`: cannot unpack non-iterable ",
    (
        "jax_patterns.lm.Engine",
        "slots",
    ): "2147483648: raised MemoryError: Unable to allocate 8.00 GiB for an array with shap",
    (
        "jax_patterns.lm.Engine",
        "max_timesteps",
    ): "2147483648: raised ValueError without naming `max_timesteps`: pattern too large fo",
    ("jax_patterns.lm.Engine", "chunk_steps"): "2147483648: was accepted (returned {0: array([[3, 4, 5, 6, 1],",
    ("jax_patterns.lm.Engine", "prompt_buckets"): "[1, 2147483648]: was accepted (returned {0: array([[3, 4, 5, 6, 1],",
    ("jax_patterns.lm.Engine", "history"): "2147483648: was accepted (returned {0: array([[3, 4, 5, 6, 1],",
    (
        "jax_patterns.lm.ModelStep",
        "graphdef",
    ): "None: raised TypeError without naming `graphdef`: Expected a GraphDef or Gra",
    ("jax_patterns.lm.ModelStep", "max_len"): "False: was accepted (returned ArrayImpl(1, 2, 8) float32)",
    (
        "jax_patterns.lm.ModelStep.__call__",
        "params",
    ): "None: raised ValueError without naming `params`: Incorrect number of leaves,",
    (
        "jax_patterns.lm.ModelStep.__call__",
        "cache",
    ): "None: raised TypeError without naming `cache`: 'NoneType' object is not subs",
    (
        "jax_patterns.lm.ModelStep.__call__",
        "tokens",
    ): "None: raised AttributeError: 'NoneType' object has no attribute 'shape'",
    (
        "jax_patterns.lm.compute_predictions",
        "codes",
    ): "ndarray(1, 2, 4: was accepted (returned (Array([[[[ 2.,  0.,  0.,  0.,  0.,  0.,  0.,  ",
    (
        "jax_patterns.lm.fused_packed_cross_entropy",
        "block_steps",
    ): "2147483648: was accepted (returned (Array(3.7072287, dtype=float32), Array([3.9474",
    (
        "jax_patterns.lm.fused_pattern_cross_entropy",
        "block_steps",
    ): "2147483648: was accepted (returned (Array(2.2830093, dtype=float32), Array([2.8884",
    (
        "jax_patterns.lm.generate",
        "step_fn",
    ): "<function Obj._extra: raised TypeError without naming `step_fn`: cannot unpack non-iterable ",
    (
        "jax_patterns.lm.generate",
        "state",
    ): "'2': raised TypeError without naming `state`: Error interpreting argument t",
    (
        "jax_patterns.lm.magnet_cross_entropy",
        "mask",
    ): "True: raised AttributeError: 'bool' object has no attribute 'shape'",
    (
        "jax_patterns.lm.magnet_generate",
        "timesteps",
    ): "2147483648: raised UserWarning: Explicitly requested dtype int64 requested in conv",
    (
        "jax_patterns.lm.magnet_generate",
        "decoding_steps",
    ): "[2, 2147483648]: raised MemoryError: Unable to allocate 16.0 GiB for an array with shap",
    ("jax_patterns.lm.magnet_generate", "min_cfg_coef"): "None: was accepted (returned ArrayImpl(1, 2, 4) int32)",
    ("jax_patterns.lm.magnet_inputs", "mask"): "True: raised AttributeError: 'bool' object has no attribute 'shape'",
    ("jax_patterns.lm.magnet_inputs", "mask_token"): "-1: was accepted (returned ArrayImpl(1, 2, 4) int32)",
    (
        "jax_patterns.lm.magnet_mask",
        "batch",
    ): "2147483648: raised JaxRuntimeError: RESOURCE_EXHAUSTED: Out of memory allocating 1",
    (
        "jax_patterns.lm.magnet_mask",
        "timesteps",
    ): "2147483648: raised UserWarning: Explicitly requested dtype int64 requested in broa",
    (
        "jax_patterns.lm.magnet_mask",
        "n_q",
    ): "2147483648: raised OverflowError: An overflow was encountered while parsing an arg",
    ("jax_patterns.lm.magnet_mask", "mask_timesteps"): "2147483648: raised Hang: no answer after 8.0 s",
    (
        "jax_patterns.lm.packed_cross_entropy",
        "logits_seq",
    ): "ndarray(1, 2, 8, 8: was accepted (returned (Array(2.4989667, dtype=float32), Array([2.6777",
    (
        "jax_patterns.lm.packed_segment_cross_entropy",
        "logits_seq",
    ): "ndarray(1, 2, 12, 8: was accepted (returned ArrayImpl(1, 2) float32)",
    (
        "jax_patterns.lm.sample_next_token",
        "logits",
    ): "None: raised TypeError without naming `logits`: argmax requires ndarray or s",
    ("jax_patterns.lm.sample_next_token", "key"): "True: raised AttributeError: 'bool' object has no attribute 'ndim'",
    ("jax_patterns.lm.sample_next_token", "use_sampling"): "None: was accepted (returned ArrayImpl(2, 2) int32)",
    (
        "jax_patterns.lm.sample_next_token",
        "temp",
    ): "None: raised ValueError without naming `temp`: None is not a valid value for",
    (
        "jax_patterns.lm.sample_next_token",
        "top_k",
    ): "None: raised ValueError without naming `top_k`: None is not a valid value fo",
    (
        "jax_patterns.lm.sample_next_token",
        "top_p",
    ): "None: raised ValueError without naming `top_p`: None is not a valid value fo",
    (
        "jax_patterns.lm.stream",
        "step_fn",
    ): "<function Obj._extra: raised TypeError without naming `step_fn`: cannot unpack non-iterable ",
    ("jax_patterns.lm.stream", "state"): "'2': raised TypeError without naming `state`: Argument '2' of type <class '",
    ("jax_patterns.lm.stream", "chunk_steps"): "2147483648: was accepted (returned (array([[[3, 4, 5, 6],",
    ("jax_patterns.models.MusicGen", "n_q"): "2147483648: raised Hang: no answer after 8.0 s",
    (
        "jax_patterns.models.MusicGen",
        "card",
    ): "2147483648: raised OverflowError: An overflow was encountered while parsing an arg",
    ("jax_patterns.models.MusicGen", "num_layers"): "2147483648: raised Hang: no answer after 8.0 s",
    (
        "jax_patterns.models.MusicGen",
        "ffn_dim",
    ): "2147483648: raised JaxRuntimeError: INTERNAL: Error dispatching computation: Error",
    ("jax_patterns.models.MusicGen", "max_len"): "2147483648: was accepted (returned ndarray(1, 2, 4, 8) float32)",
    ("jax_patterns.models.MusicGen", "encoder_dim"): "2147483648: was accepted (returned ndarray(1, 2, 4, 8) float32)",
    (
        "jax_patterns.models.MusicGen",
        "subcodes_context",
    ): "2147483648: was accepted (returned ndarray(1, 2, 4, 8) float32)",
    (
        "jax_patterns.models.MusicGen",
        "param_dtype",
    ): "True: raised TypeError without naming `param_dtype`: Cannot interpret 'True'",
    (
        "jax_patterns.models.MusicGen",
        "dtype",
    ): "True: raised TypeError without naming `dtype`: Cannot interpret 'True' as a ",
    (
        "jax_patterns.models.MusicGen",
        "rngs",
    ): "None: raised AttributeError: 'NoneType' object has no attribute 'params'",
    (
        "jax_patterns.models.MusicGen.__call__",
        "encoder_hidden_states",
    ): "[[[1.053115725517273: raised TypeError without naming `encoder_hidden_states`: Cannot determ",
    (
        "jax_patterns.models.MusicGen.__call__",
        "encoder_attention_mask",
    ): "ndarray(1, 3: raised TypePromotionError without naming `encoder_attention_mask`: Inp",
    ("jax_patterns.models.MusicGen.__call__", "stage"): "2.5: was accepted (returned ArrayImpl(1, 2, 4, 8) float32)",
    (
        "jax_patterns.models.MusicGen.check_condition",
        "states_shape",
    ): "None: raised TypeError without naming `states_shape`: 'NoneType' object is n",
    (
        "jax_patterns.models.MusicGen.check_condition",
        "mask_shape",
    ): "True: raised TypeError without naming `mask_shape`: 'bool' object is not ite",
    (
        "jax_patterns.models.MusicGen.check_condition",
        "batch",
    ): "None: raised ValueError without naming `batch`: `encoder_hidden_states` must",
    (
        "jax_patterns.models.MusicGen.condition",
        "cache",
    ): "None: raised TypeError without naming `cache`: 'NoneType' object is not subs",
    (
        "jax_patterns.models.MusicGen.decode",
        "cache",
    ): "None: raised TypeError without naming `cache`: 'NoneType' object is not subs",
    (
        "jax_patterns.models.MusicGen.decode",
        "tokens",
    ): "ndarray(1, 2, 0: raised IndexError: index is out of bounds for axis 2 with size 0",
    (
        "jax_patterns.models.MusicGen.engine",
        "slots",
    ): "2147483648: raised JaxRuntimeError: RESOURCE_EXHAUSTED: Out of memory allocating 4",
    (
        "jax_patterns.models.MusicGen.engine",
        "max_timesteps",
    ): "2147483648: raised ValueError without naming `max_timesteps`: pattern too large fo",
    (
        "jax_patterns.models.MusicGen.engine",
        "condition_len",
    ): "2147483648: raised JaxRuntimeError: RESOURCE_EXHAUSTED: Out of memory allocating 2",
    ("jax_patterns.models.MusicGen.engine", "guidance_scale"): "nan: was accepted (returned {0: array([[3, 0, 0, 0],",
    ("jax_patterns.models.MusicGen.engine", "top_k"): "ndarray(1,: was accepted (returned {0: array([[3, 0, 0, 0],",
    (
        "jax_patterns.models.MusicGen.engine",
        "chunk_steps",
    ): "2147483648: was accepted (returned {0: array([[3, 0, 0, 0],",
    (
        "jax_patterns.models.MusicGen.engine",
        "prompt_buckets",
    ): "[1, 2147483648]: was accepted (returned {0: array([[3, 0, 0, 0],",
    (
        "jax_patterns.models.MusicGen.from_audiocraft",
        "state_dict",
    ): "None: raised ValueError without naming `state_dict`: the audiocraft checkpoi",
    (
        "jax_patterns.models.MusicGen.from_audiocraft",
        "cfg",
    ): "None: raised TypeError without naming `cfg`: the checkpoint's config is need",
    (
        "jax_patterns.models.MusicGen.from_audiocraft",
        "max_len",
    ): "2147483648: was accepted (returned ndarray(1, 4, 4, 16) float32)",
    (
        "jax_patterns.models.MusicGen.from_audiocraft",
        "param_dtype",
    ): "True: raised TypeError without naming `param_dtype`: Cannot interpret 'True'",
    (
        "jax_patterns.models.MusicGen.from_audiocraft",
        "dtype",
    ): "True: raised TypeError without naming `dtype`: Cannot interpret 'True' as a ",
    (
        "jax_patterns.models.MusicGen.from_transformers",
        "model_or_state_dict",
    ): "None: raised TypeError without naming `model_or_state_dict`: a state dict ne",
    (
        "jax_patterns.models.MusicGen.from_transformers",
        "config",
    ): "True: raised ValueError without naming `config`: not a MusicGen config: mode",
    (
        "jax_patterns.models.MusicGen.from_transformers",
        "max_len",
    ): "2147483648: was accepted (returned ndarray(1, 2, 4, 8) float32)",
    (
        "jax_patterns.models.MusicGen.from_transformers",
        "param_dtype",
    ): "True: raised TypeError without naming `param_dtype`: Cannot interpret 'True'",
    (
        "jax_patterns.models.MusicGen.from_transformers",
        "dtype",
    ): "True: raised TypeError without naming `dtype`: Cannot interpret 'True' as a ",
    (
        "jax_patterns.models.MusicGen.generate",
        "encoder_hidden_states",
    ): "True: raised IndexError: tuple index out of range",
    (
        "jax_patterns.models.MusicGen.generate",
        "encoder_attention_mask",
    ): "'2': raised TypeError without naming `encoder_attention_mask`: Value '2' wi",
    (
        "jax_patterns.models.MusicGen.generate",
        "max_new_frames",
    ): "2147483648: raised ValueError without naming `max_new_frames`: pattern too large f",
    (
        "jax_patterns.models.MusicGen.generate",
        "guidance_scale",
    ): "nan: was accepted (returned ArrayImpl(1, 2, 4) int32)",
    (
        "jax_patterns.models.MusicGen.hidden",
        "encoder_hidden_states",
    ): "[[[1.053115725517273: raised TypeError without naming `encoder_hidden_states`: Cannot determ",
    (
        "jax_patterns.models.MusicGen.hidden",
        "encoder_attention_mask",
    ): "ndarray(1, 3: raised TypePromotionError without naming `encoder_attention_mask`: Inp",
    ("jax_patterns.models.MusicGen.hidden", "stage"): "2.5: was accepted (returned ArrayImpl(1, 4, 8) float32)",
    (
        "jax_patterns.models.MusicGen.init_cache",
        "batch",
    ): "2147483648: raised JaxRuntimeError: RESOURCE_EXHAUSTED: Out of memory allocating 2",
    (
        "jax_patterns.models.MusicGen.init_cache",
        "condition_len",
    ): "2147483648: raised JaxRuntimeError: RESOURCE_EXHAUSTED: Out of memory allocating 6",
    (
        "jax_patterns.models.MusicGen.init_cache",
        "dtype",
    ): "True: raised TypeError without naming `dtype`: Cannot interpret 'True' as a ",
    (
        "jax_patterns.models.MusicGen.init_cache",
        "length",
    ): "2147483648: raised JaxRuntimeError: RESOURCE_EXHAUSTED: Out of memory allocating 6",
    (
        "jax_patterns.models.MusicGen.magnet_fn",
        "encoder_hidden_states",
    ): "'2': raised TypeError without naming `encoder_hidden_states`: Value '2' wit",
    (
        "jax_patterns.models.MusicGen.magnet_fn",
        "encoder_attention_mask",
    ): "True: raised IndexError: tuple index out of range",
    ("jax_patterns.pack", "examples"): "None: raised TypeError without naming `examples`: 'NoneType' object is not i",
    ("jax_patterns.pack", "provider"): "None: raised AttributeError: 'NoneType' object has no attribute 'n_q'",
    ("jax_patterns.pack", "row_steps"): ": ValueError: The truth value of an array with more than one element is ",
    ("jax_patterns.pack", "special_token"): ": ValueError: The truth value of an array with more than one element is ",
    ("jax_patterns.pack", "rows"): ": ValueError: The truth value of an array with more than one element is ",
    ("jax_patterns.pack", "max_segments"): ": ValueError: The truth value of an array with more than one element is ",
    (
        "jax_patterns.pack",
        "keep_only_valid_steps",
    ): ": ValueError: The truth value of an array with more than one element is ",
    ("jax_patterns.plan_rows", "steps"): "None: raised TypeError without naming `steps`: 'NoneType' object is not iter",
    ("jax_patterns.plan_rows", "row_steps"): "2147483648: was accepted (returned [[0, 1, 2]])",
    (
        "jax_patterns.plot",
        "timesteps",
    ): "9223372036854775808: raised OverflowError: Python int too large to convert to C long",
    ("jax_patterns.plot", "ax"): "True: raised AttributeError: 'bool' object has no attribute 'imshow'",
    (
        "jax_patterns.plot",
        "max_steps",
    ): "2147483648: was accepted (returned (['S', '0', '1', '2', '3', 'S', 'S', 'S', '0', ",
    ("jax_patterns.plot", "title"): "True: raised AttributeError: 'bool' object has no attribute 'expandtabs'",
    ("jax_patterns.plot", "annotate"): "2.5: was accepted (returned (['S', '0', '1', '2', '3', 'S', 'S', 'S', '0', ",
    (
        "jax_patterns.presets.BarkCoarse",
        "n_coarse_codebooks",
    ): "2147483648: was accepted (returned BarkCoarse(n_coarse_codebooks=2147483648, codeb",
    (
        "jax_patterns.presets.BarkCoarse",
        "codebook_size",
    ): "2147483648: was accepted (returned BarkCoarse(n_coarse_codebooks=2, codebook_size=",
    (
        "jax_patterns.presets.BarkCoarse",
        "semantic_vocab_size",
    ): "2147483648: was accepted (returned BarkCoarse(n_coarse_codebooks=2, codebook_size=",
    ("jax_patterns.presets.BarkCoarse.codes", "stream"): "None: raised IndexError: tuple index out of range",
    (
        "jax_patterns.presets.BarkCoarse.history",
        "coarse_prompt",
    ): "None: raised ValueError without naming `coarse_prompt`: `codes` must be code",
    (
        "jax_patterns.presets.BarkCoarse.history",
        "semantic_length",
    ): "None: raised TypeError without naming `semantic_length`: unsupported operand",
    (
        "jax_patterns.presets.BarkCoarse.history",
        "max_coarse_history",
    ): "None: raised TypeError without naming `max_coarse_history`: unsupported oper",
    (
        "jax_patterns.presets.BarkCoarse.history",
        "semantic_to_coarse_ratio",
    ): "None: raised TypeError without naming `semantic_to_coarse_ratio`: unsupporte",
    (
        "jax_patterns.presets.CSM",
        "num_codebooks",
    ): "2147483648: was accepted (returned CSM(num_codebooks=2147483648, vocab_size=10, au",
    (
        "jax_patterns.presets.CSM",
        "vocab_size",
    ): "2147483648: was accepted (returned CSM(num_codebooks=2, vocab_size=2147483648, aud",
    (
        "jax_patterns.presets.CSM",
        "audio_token_id",
    ): "2147483648: was accepted (returned CSM(num_codebooks=2, vocab_size=10, audio_token",
    (
        "jax_patterns.presets.CSM",
        "audio_eos_token_id",
    ): "2147483648: was accepted (returned CSM(num_codebooks=2, vocab_size=10, audio_token",
    (
        "jax_patterns.presets.CSM.decode",
        "frames",
    ): "ndarray(1, 2, 0: raised ValueError without naming `frames`: attempt to get argmax of an",
    ("jax_patterns.presets.CSM.frames", "codes"): "ndarray(1, 2, 4: was accepted (returned ArrayImpl(1, 6, 2) int32)",
    ("jax_patterns.presets.CSM.labels", "codes"): "ndarray(1, 2, 4: was accepted (returned ArrayImpl(1, 6, 2) int32)",
    (
        "jax_patterns.presets.CSM.labels",
        "depth",
    ): "'2': raised TypeError without naming `depth`: Value '2' with dtype <U1 is n",
    (
        "jax_patterns.presets.CSM.loss",
        "backbone_logits",
    ): "ndarray(1, 6, 10: was accepted (returned (Array(5.498938, dtype=float32), Array(2.558975",
    (
        "jax_patterns.presets.CSM.loss",
        "depth_logits",
    ): "ndarray(1, 6, 1, 10: was accepted (returned (Array(5.225829, dtype=float32), Array(2.515197",
    (
        "jax_patterns.presets.CSM.loss",
        "labels",
    ): "None: raised ValueError without naming `labels`: None is not a valid value f",
    (
        "jax_patterns.presets.Dia",
        "delay_pattern",
    ): "[0, 2147483648]: was accepted (returned Dia(delay_pattern=(0, 2147483648), bos_token_id",
    (
        "jax_patterns.presets.Dia",
        "bos_token_id",
    ): "2147483648: was accepted (returned Dia(delay_pattern=(0, 1), bos_token_id=21474836",
    (
        "jax_patterns.presets.Dia",
        "pad_token_id",
    ): "2147483648: was accepted (returned Dia(delay_pattern=(0, 1), bos_token_id=8, pad_t",
    (
        "jax_patterns.presets.Dia",
        "eos_token_id",
    ): "2147483648: was accepted (returned Dia(delay_pattern=(0, 1), bos_token_id=8, pad_t",
    (
        "jax_patterns.presets.Dia.decode",
        "audio_prompt_len",
    ): "2147483648: was accepted (returned (Array([[[9, 9, 9, 9, 9],",
    (
        "jax_patterns.presets.Dia.loss",
        "logits",
    ): "ndarray(1, 2, 6, 0: raised TypeError without naming `logits`: Slice size at index 3 in gat",
    (
        "jax_patterns.presets.HiggsAudio",
        "num_codebooks",
    ): "2147483648: was accepted (returned HiggsAudio(num_codebooks=2147483648, audio_stre",
    (
        "jax_patterns.presets.HiggsAudio",
        "audio_stream_bos_id",
    ): "2147483648: was accepted (returned HiggsAudio(num_codebooks=2, audio_stream_bos_id",
    (
        "jax_patterns.presets.HiggsAudio",
        "audio_stream_eos_id",
    ): "2147483648: was accepted (returned HiggsAudio(num_codebooks=2, audio_stream_bos_id",
    (
        "jax_patterns.presets.HiggsAudio.decode",
        "ids",
    ): "ndarray(1, 2, 0: raised ValueError without naming `ids`: with `lengths`, `s` must have ",
    (
        "jax_patterns.presets.HiggsAudio.decode",
        "timesteps",
    ): "0: raised ValueError without naming `timesteps`: `lengths` must lie in [0",
    (
        "jax_patterns.presets.HiggsAudio.loss",
        "audio_logits",
    ): "None: raised TypeError without naming `audio_logits`: `logits_seq` is None; ",
    (
        "jax_patterns.presets.KyutaiSTT",
        "num_codebooks",
    ): "2147483648: was accepted (returned KyutaiSTT(num_codebooks=2147483648, codebook_vo",
    (
        "jax_patterns.presets.KyutaiSTT",
        "codebook_vocab_size",
    ): "0: was accepted (returned KyutaiSTT(num_codebooks=2, codebook_vocab_size=",
    (
        "jax_patterns.presets.KyutaiSTT",
        "vocab_size",
    ): "0: was accepted (returned KyutaiSTT(num_codebooks=2, codebook_vocab_size=",
    (
        "jax_patterns.presets.KyutaiSTT",
        "audio_bos_token_id",
    ): "2147483648: was accepted (returned KyutaiSTT(num_codebooks=2, codebook_vocab_size=",
    (
        "jax_patterns.presets.KyutaiSTT",
        "audio_pad_token_id",
    ): "2147483648: was accepted (returned KyutaiSTT(num_codebooks=2, codebook_vocab_size=",
    (
        "jax_patterns.presets.KyutaiSTT.embedding_ids",
        "input_ids",
    ): "None: raised ValueError without naming `input_ids`: None is not a valid valu",
    (
        "jax_patterns.presets.KyutaiSTT.input_ids",
        "text",
    ): "None: raised ValueError without naming `text`: None is not a valid value for",
    (
        "jax_patterns.presets.Moshi",
        "num_codebooks",
    ): "2147483648: was accepted (returned Moshi(num_codebooks=2147483648, audio_vocab_siz",
    (
        "jax_patterns.presets.Moshi",
        "audio_vocab_size",
    ): "0: was accepted (returned Moshi(num_codebooks=2, audio_vocab_size=0))",
    (
        "jax_patterns.presets.Moshi.decode",
        "ids",
    ): "None: raised TypeError without naming `ids`: `s` is None; expected an array ",
    (
        "jax_patterns.presets.Moshi.decode",
        "timesteps",
    ): "0: raised ValueError without naming `timesteps`: `s` has S=5 sequence ste",
    (
        "jax_patterns.presets.Moshi.loss",
        "audio_logits",
    ): "None: raised TypeError without naming `audio_logits`: `logits_seq` is None; ",
    (
        "jax_patterns.presets.Moshi.loss",
        "codes",
    ): "ndarray(1, 2, 0: raised ValueError without naming `codes`: `logits_seq` has K=2, S=4; t",
    (
        "jax_patterns.presets.MusicGen",
        "num_codebooks",
    ): "2147483648: was accepted (returned MusicGen(num_codebooks=2147483648, pad_token_id",
    (
        "jax_patterns.presets.MusicGen",
        "pad_token_id",
    ): "2147483648: was accepted (returned MusicGen(num_codebooks=2, pad_token_id=21474836",
    (
        "jax_patterns.presets.MusicGen.decode",
        "ids",
    ): "None: raised TypeError without naming `ids`: `s` is None; expected an array ",
    (
        "jax_patterns.presets.MusicGen.decode",
        "timesteps",
    ): "0: raised ValueError without naming `timesteps`: `s` has S=6 sequence ste",
    (
        "jax_patterns.presets.MusicGen.loss",
        "logits",
    ): "ndarray(1, 2, 5, 0: raised ValueError without naming `logits`: `codes`[0, 0, 0] = 1 is a t",
    (
        "jax_patterns.presets.MusicGen.loss",
        "codes",
    ): "ndarray(1, 2, 0: raised ValueError without naming `codes`: `logits_seq` has K=2, S=5; t",
    (
        "jax_patterns.presets.Orpheus.split",
        "ids",
    ): "[[101, 110, 120, 129: raised TypeError without naming `ids`: list indices must be integers o",
    (
        "jax_patterns.presets.Orpheus.tokens",
        "levels",
    ): "None: raised TypeError without naming `levels`: `codes` must be SNAC's three",
    (
        "jax_patterns.presets.Orpheus.virtual",
        "levels",
    ): "None: raised TypeError without naming `levels`: `codes` must be SNAC's three",
    (
        "jax_patterns.presets.ParlerTTS",
        "num_codebooks",
    ): "2147483648: was accepted (returned ParlerTTS(num_codebooks=2147483648, bos_token_i",
    (
        "jax_patterns.presets.ParlerTTS",
        "bos_token_id",
    ): "2147483648: was accepted (returned ParlerTTS(num_codebooks=2, bos_token_id=2147483",
    (
        "jax_patterns.presets.ParlerTTS",
        "eos_token_id",
    ): "2147483648: was accepted (returned ParlerTTS(num_codebooks=2, bos_token_id=9, eos_",
    (
        "jax_patterns.presets.ParlerTTS",
        "pad_token_id",
    ): "2147483648: was accepted (returned ParlerTTS(num_codebooks=2, bos_token_id=9, eos_",
    (
        "jax_patterns.presets.Qwen3OmniTalker",
        "num_code_groups",
    ): "2147483648: was accepted (returned Qwen3OmniTalker(num_code_groups=2147483648, voc",
    (
        "jax_patterns.presets.Qwen3OmniTalker",
        "vocab_size",
    ): "2147483648: was accepted (returned Qwen3OmniTalker(num_code_groups=3, vocab_size=2",
    (
        "jax_patterns.presets.Qwen3OmniTalker.decode",
        "frames",
    ): "ndarray(1, 3, 0: raised ValueError without naming `frames`: attempt to get argmax of an",
    (
        "jax_patterns.presets.Qwen3OmniTalker.embedding_ids",
        "frames",
    ): "ndarray(1, 2, 3: was accepted (returned ArrayImpl(1, 2, 3) int32)",
    (
        "jax_patterns.presets.Qwen3OmniTalker.text_positions",
        "steps",
    ): "2147483648: raised JaxRuntimeError: RESOURCE_EXHAUSTED: Out of memory allocating 8",
    (
        "jax_patterns.presets.Qwen3OmniTalker.text_positions",
        "text_length",
    ): "None: raised ValueError without naming `text_length`: None is not a valid va",
    (
        "jax_patterns.presets.from_transformers",
        "num_codebooks",
    ): "2147483648: was accepted (returned MusicGen(num_codebooks=2147483648, pad_token_id",
    (
        "jax_patterns.presets.from_transformers",
        "pad_token_id",
    ): "2147483648: was accepted (returned MusicGen(num_codebooks=2, pad_token_id=21474836",
    (
        "jax_patterns.presets.from_transformers",
        "audio_channels",
    ): "False: was accepted (returned MusicGen(num_codebooks=2, pad_token_id=8, audio",
    (
        "jax_patterns.segment",
        "codes",
    ): "ndarray(2, 4: was accepted (returned (array([[          8, -2147483648,           2,",
    ("jax_patterns.segment", "provider"): "None: raised AttributeError: 'NoneType' object has no attribute 'n_q'",
    (
        "jax_patterns.segment_steps",
        "provider",
    ): "None: raised AttributeError: 'NoneType' object has no attribute 'get_pattern",
    (
        "jax_patterns.segment_steps",
        "length",
    ): "None: raised TypeError without naming `length`: `timesteps` must be an int, ",
    ("jax_patterns.segment_steps", "keep_only_valid_steps"): "None: was accepted (returned 6)",
    (
        "jax_patterns.train.MarkovCodes",
        "n_q",
    ): "None: raised TypeError without naming `n_q`: unsupported operand type(s) for",
    (
        "jax_patterns.train.MarkovCodes",
        "card",
    ): "None: raised TypeError without naming `card`: unsupported operand type(s) fo",
    (
        "jax_patterns.train.MarkovCodes",
        "min_len",
    ): "None: raised TypeError without naming `min_len`: '<=' not supported between ",
    (
        "jax_patterns.train.MarkovCodes",
        "max_len",
    ): "None: raised TypeError without naming `max_len`: '<=' not supported between ",
    (
        "jax_patterns.train.MarkovCodes",
        "size",
    ): "None: raised TypeError without naming `size`: 'NoneType' object cannot be in",
    (
        "jax_patterns.train.MarkovCodes",
        "seed",
    ): "None: raised TypeError without naming `seed`: object of type 'NoneType' has ",
    (
        "jax_patterns.train.MarkovCodes",
        "noise",
    ): "None: raised TypeError without naming `noise`: '<' not supported between ins",
    (
        "jax_patterns.train.Options",
        "steps",
    ): "None: was accepted (returned Options(steps=None, batch_size=1, seed=0, pack=",
    (
        "jax_patterns.train.Options",
        "batch_size",
    ): "None: was accepted (returned Options(steps=1, batch_size=None, seed=0, pack=",
    (
        "jax_patterns.train.Options",
        "seed",
    ): "None: was accepted (returned Options(steps=1, batch_size=1, seed=None, pack=",
    (
        "jax_patterns.train.Options",
        "pack",
    ): "None: was accepted (returned Options(steps=1, batch_size=1, seed=0, pack=Non",
    (
        "jax_patterns.train.Options",
        "checkpoint_dir",
    ): "True: was accepted (returned Options(steps=1, batch_size=1, seed=0, pack=Fal",
    (
        "jax_patterns.train.Options",
        "stop_after",
    ): "False: was accepted (returned Options(steps=1, batch_size=1, seed=0, pack=Fal",
    (
        "jax_patterns.train.Options",
        "coordinator",
    ): "True: was accepted (returned Options(steps=1, batch_size=1, seed=0, pack=Fal",
    (
        "jax_patterns.train.Options",
        "coordinator_timeout",
    ): "None: was accepted (returned Options(steps=1, batch_size=1, seed=0, pack=Fal",
    (
        "jax_patterns.train.Options",
        "num_processes",
    ): "None: was accepted (returned Options(steps=1, batch_size=1, seed=0, pack=Fal",
    (
        "jax_patterns.train.Options",
        "process_id",
    ): "None: was accepted (returned Options(steps=1, batch_size=1, seed=0, pack=Fal",
    (
        "jax_patterns.train.Options",
        "log_every",
    ): "None: was accepted (returned Options(steps=1, batch_size=1, seed=0, pack=Fal",
    (
        "jax_patterns.train.Options",
        "save_every",
    ): "None: was accepted (returned Options(steps=1, batch_size=1, seed=0, pack=Fal",
    (
        "jax_patterns.train.Options",
        "n_q",
    ): "None: was accepted (returned Options(steps=1, batch_size=1, seed=0, pack=Fal",
    (
        "jax_patterns.train.Options",
        "card",
    ): "None: was accepted (returned Options(steps=1, batch_size=1, seed=0, pack=Fal",
    (
        "jax_patterns.train.Options",
        "max_frames",
    ): "None: was accepted (returned Options(steps=1, batch_size=1, seed=0, pack=Fal",
    (
        "jax_patterns.train.Options",
        "min_frames",
    ): "False: was accepted (returned Options(steps=1, batch_size=1, seed=0, pack=Fal",
    (
        "jax_patterns.train.Options",
        "dim",
    ): "None: was accepted (returned Options(steps=1, batch_size=1, seed=0, pack=Fal",
    (
        "jax_patterns.train.Options",
        "learning_rate",
    ): "None: was accepted (returned Options(steps=1, batch_size=1, seed=0, pack=Fal",
    (
        "jax_patterns.train.Options",
        "loss",
    ): "None: was accepted (returned Options(steps=1, batch_size=1, seed=0, pack=Fal",
    (
        "jax_patterns.train.input_pipeline",
        "source",
    ): "None: raised TypeError without naming `source`: object of type 'NoneType' ha",
    (
        "jax_patterns.train.input_pipeline",
        "provider",
    ): "None: raised AttributeError: 'NoneType' object has no attribute 'n_q'",
    (
        "jax_patterns.train.input_pipeline",
        "batch_size",
    ): "None: raised TypeError without naming `batch_size`: '<=' not supported betwe",
    (
        "jax_patterns.train.input_pipeline",
        "row_steps",
    ): "None: raised ValueError without naming `row_steps`: pytree structure error: ",
    (
        "jax_patterns.train.input_pipeline",
        "seed",
    ): "None: raised ValueError without naming `seed`: `shuffle` requires a seed. Pl",
    (
        "jax_patterns.train.input_pipeline",
        "pack",
    ): "None: was accepted (returned {'tokens': array([[[4, 1, 2, 2, 4, 4, 4, 4],",
    (
        "jax_patterns.train.input_pipeline",
        "packing_bins",
    ): "False: was accepted (returned {'tokens': array([[[4, 1, 2, 2, 4, 4, 4, 4],",
    (
        "jax_patterns.train.input_pipeline",
        "prefetch",
    ): "None: was accepted (returned {'tokens': array([[[4, 1, 2, 2, 4, 4, 4, 4],",
    (
        "jax_patterns.train.launch",
        "processes",
    ): "None: raised TypeError without naming `processes`: 'NoneType' object cannot ",
    (
        "jax_patterns.train.launch",
        "argv",
    ): "None: raised TypeError without naming `argv`: Value after * must be an itera",
    ("jax_patterns.train.launch", "timeout"): "nan: was accepted (returned 0)",
    (
        "jax_patterns.train.train",
        "options",
    ): "None: raised AttributeError: 'NoneType' object has no attribute 'checkpoint_",
    ("jax_patterns.train.train", "emit"): "True: raised TypeError without naming `emit`: 'bool' object is not callable",
    ("jax_patterns.unpack", "packed"): "None: raised AttributeError: 'NoneType' object has no attribute 'tokens'",
}

VALID_KNOWN: dict[str, str] = {
    "jax_patterns.CodebooksPatternProvider": "a user provider's pattern cannot be re-labelled: Pattern.with_provider "
    "copies the `__weakref__` slot (AttributeError)",
    "jax_patterns.CodebooksPatternProvider.get_pattern": "as above",
    "jax_patterns.Pattern.with_provider": "as above",
    "jax_patterns.train.launch": "the children's stdout and stderr pipes are never closed (ResourceWarning)",
}
SKIPPED: dict[tuple[str, str], str] = {
    ("jax_patterns.models.MusicGen", "dim"): "dim=2**31 aborts the process in XLA",
    ("jax_patterns.presets.Moshi.sequence", "timesteps"): "timesteps=2**63 aborts the process in XLA",
    ("jax_patterns.train.launch", "processes"): "launch leaves its children's pipes open (ResourceWarning at teardown)",
    ("jax_patterns.train.launch", "argv"): "as above",
    ("jax_patterns.train.launch", "timeout"): "as above",
    ("jax_patterns.train.input_pipeline", "prefetch"): "a bad prefetch reaches grain, whose half-built iterator "
    "fails in __del__ (an error at teardown)",
}
