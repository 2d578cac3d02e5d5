# Pipeline image: `docker build -t tfpipelines .`
# GPU: `docker build --build-arg BASE_IMAGE=tensorflow/tensorflow:2.21.0-gpu -t tfpipelines:gpu .`
ARG BASE_IMAGE=tensorflow/tensorflow:2.21.0
FROM ${BASE_IMAGE}

WORKDIR /app
ENV PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    TFPIPE_DATA_DIR=/app/data \
    TF_CPP_MIN_LOG_LEVEL=2

COPY pyproject.toml README.md ./
COPY pipelines ./pipelines
COPY tfmodels ./tfmodels
COPY configs ./configs
COPY data ./data
RUN pip install -e ".[pretrained,tune]"

# Runs, MLflow store and exports go to /runs: mount a volume there.
VOLUME ["/runs"]
ENTRYPOINT ["tfpipe"]
CMD ["run", "segmentation", "--workdir", "/runs"]
