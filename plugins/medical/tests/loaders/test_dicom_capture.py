"""Third-party warnings and log records captured per file, once, redacted; loggers restored."""

from __future__ import annotations

import logging
import warnings

from ssl_domains_medical.loaders.dicom_capture import capture_file_messages, redact


def test_records_and_warnings_kept_per_file_once_and_nothing_printed(capsys):
    pydicom_log = logging.getLogger("pydicom")
    before = (list(pydicom_log.handlers), pydicom_log.propagate)
    with capture_file_messages() as cap:
        cap.current = "a.dcm"
        for _ in range(2):  # pydicom logs and warns the same text
            pydicom_log.warning("Invalid value for VR PN: 'DOE^JOHN'. Please see <https://x> for allowed values.")
            warnings.warn("Invalid value for VR PN: 'DOE^JOHN'. Please see <https://x> for allowed values.",
                          UserWarning, stacklevel=1)
        cap.current = "b.dcm"
        try:
            raise ValueError("bad stream")
        except ValueError:
            logging.getLogger("PIL.JpegImagePlugin").exception("decoder failed")
    assert cap.messages == {"a.dcm": ["Invalid value for VR PN: '…'."], "b.dcm": ["decoder failed"]}
    assert "ValueError: bad stream" in cap.tracebacks["b.dcm"][0]
    out = capsys.readouterr()
    assert out.out == out.err == ""
    assert (list(pydicom_log.handlers), pydicom_log.propagate) == before


def test_redact_keeps_one_line_without_quoted_values():
    text = 'Unable to decode:\n  pylibjpeg: error "Smith" in frame\n  pillow: other'
    assert redact(text) == "Unable to decode: pylibjpeg: error '…' in frame"
    assert len(redact("x" * 1000)) == 200
