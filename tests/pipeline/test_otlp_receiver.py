from collector.config import load
from collector.transport import Answer, HttpTransport, Outcome
from pipeline.otlp_receiver import OtlpReceiver


def test_requests_share_one_kept_alive_connection_and_none_arrives_after_stop():
    receiver = OtlpReceiver()
    transport = HttpTransport(load(None, environ={"OTEL_EXPORTER_OTLP_METRICS_ENDPOINT": receiver.url}).exporter)
    try:
        assert transport.send(b"") == Answer(Outcome.SENT)
        connection = transport.connection.sock
        assert connection is not None  # the receiver did not close it after its answer
        assert transport.send(b"") == Answer(Outcome.SENT)
        assert transport.connection.sock is connection
        receiver.stop()
        # a stopped receiver is a gateway that is away, also for a client whose connection was open
        outcome, reason, *_ = transport.send(b"")
        assert outcome is Outcome.RETRY and reason.startswith(f"ConnectionRefusedError from {transport.url}: ")
        assert len(receiver.requests) == 2
    finally:
        transport.close()
