"""Image classification: image folders or TFRecords in, a Keras classifier, image bytes out."""
