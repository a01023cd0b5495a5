"""to_c_array: the .cc/.h pair TFLite Micro firmware compiles in."""

import re

import pytest

from keras_kd import export


def test_c_array_round_trips_to_the_same_bytes(exported, tmp_path):
    cc_path, h_path = export.to_c_array(
        exported["watch"], str(tmp_path / "firmware"), name="g_model"
    )
    with open(exported["watch"], "rb") as f:
        content = f.read()
    with open(cc_path) as f:
        source = f.read()
    body = source[source.index("{") + 1 : source.index("};")]
    assert bytes(int(h, 16) for h in re.findall(r"0x([0-9a-f]{2})", body)) == content
    assert "alignas(16) const unsigned char g_model[] = {" in source
    assert f"const unsigned int g_model_len = {len(content)};" in source
    assert '#include "g_model.h"' in source
    with open(h_path) as f:
        header = f.read()
    assert header.count("G_MODEL_H_") == 3  # ifndef, define, endif comment
    assert "extern const unsigned char g_model[];" in header
    assert "extern const unsigned int g_model_len;" in header


@pytest.mark.parametrize("name", ["1model", "model-data", "", None])
def test_c_array_refuses_names_that_are_not_c_identifiers(name, exported, tmp_path):
    with pytest.raises(ValueError, match="name must be a C identifier"):
        export.to_c_array(exported["watch"], str(tmp_path), name=name)


def test_c_array_refuses_a_missing_file(tmp_path):
    with pytest.raises(ValueError, match="path must be an existing .tflite file"):
        export.to_c_array(str(tmp_path / "missing.tflite"), str(tmp_path))
