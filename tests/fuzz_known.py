"""The public-API fuzz's known failures: the defects it found, each removed by the commit that fixes it.

`KNOWN` maps (entry, argument) to the first failure (the value, and what happened); `test_fuzz.py` marks those
cases xfail (strict: a fixed pair must leave the list). `VALID_KNOWN`: entries whose valid call fails. `SKIPPED`:
pairs that cannot run before their fix (the process aborts, or the call leaks a pipe or a thread that fails the
test after it).
"""

KNOWN: dict[tuple[str, str], str] = {
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
    ("jax_patterns.lm.CodecLM", "n_q"): "46341: was accepted (returned ndarray(1, 46341, 4, 8) float32)",
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
        "dtype",
    ): "None: was accepted (returned {'keys': [Array([[[[0., 0., 0., 0.],",
    (
        "jax_patterns.lm.CodecLM.init_cache",
        "per_row",
    ): "None: was accepted (returned {'keys': [Array([[[[0., 0., 0., 0.],",
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
        "jax_patterns.lm.magnet_generate",
        "decoding_steps",
    ): "[2, 2147483648]: raised MemoryError: Unable to allocate 16.0 GiB for an array with shap",
    (
        "jax_patterns.lm.sample_next_token",
        "logits",
    ): "None: raised TypeError without naming `logits`: argmax requires ndarray or s",
    ("jax_patterns.models.MusicGen", "n_q"): "2147483648: raised Hang: no answer after 8.0 s",
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
    ("jax_patterns.models.MusicGen.engine", "guidance_scale"): "nan: was accepted (returned {0: array([[3, 0, 0, 0],",
    ("jax_patterns.models.MusicGen.engine", "top_k"): "ndarray(1,: was accepted (returned {0: array([[3, 0, 0, 0],",
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
        "dtype",
    ): "True: raised TypeError without naming `dtype`: Cannot interpret 'True' as a ",
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
    ("jax_patterns.plot", "ax"): "True: raised AttributeError: 'bool' object has no attribute 'imshow'",
    ("jax_patterns.plot", "title"): "True: raised AttributeError: 'bool' object has no attribute 'expandtabs'",
    ("jax_patterns.plot", "annotate"): "2.5: was accepted (returned (['S', '0', '1', '2', '3', 'S', 'S', 'S', '0', ",
    (
        "jax_patterns.presets.BarkCoarse",
        "n_coarse_codebooks",
    ): "2147483648: was accepted (returned BarkCoarse(n_coarse_codebooks=2147483648, codeb",
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
        "jax_patterns.presets.Dia.loss",
        "logits",
    ): "ndarray(1, 2, 6, 0: raised TypeError without naming `logits`: Slice size at index 3 in gat",
    (
        "jax_patterns.presets.HiggsAudio",
        "num_codebooks",
    ): "2147483648: was accepted (returned HiggsAudio(num_codebooks=2147483648, audio_stre",
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
        "jax_patterns.presets.Qwen3OmniTalker",
        "num_code_groups",
    ): "2147483648: was accepted (returned Qwen3OmniTalker(num_code_groups=2147483648, voc",
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
        "text_length",
    ): "None: raised ValueError without naming `text_length`: None is not a valid va",
    (
        "jax_patterns.presets.from_transformers",
        "num_codebooks",
    ): "2147483648: was accepted (returned MusicGen(num_codebooks=2147483648, pad_token_id",
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
VALID_KNOWN: dict[str, str] = {}
SKIPPED: dict[tuple[str, str], str] = {}
