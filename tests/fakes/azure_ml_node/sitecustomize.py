"""The Azure SDK boundary of the fake Azure ML node (tests/fakes/azure_ml_jobs.py): a job's command runs with
this folder first on PYTHONPATH, so every Python process of the job imports this at start-up. Its
`azure.storage.blob.BlobServiceClient` talks to the fake Blob Storage the test's process uses (a directory,
through tests/fakes/azure_ml.py's FakeTransport), `azure.identity.DefaultAzureCredential` is a fake managed
identity, and the network is closed. The job's own code runs unchanged.

If the fakes cannot be installed, the process exits at once: a job without them would reach for the real Azure.
"""

import os
import sys
import traceback
from pathlib import Path


def _install() -> None:
    repo_root = str(Path(__file__).resolve().parents[3])
    sys.path.insert(0, repo_root)  # for tests.fakes only; the job imports its own code from the "image"
    try:
        import azure.identity
        import azure.storage.blob

        from tests.fakes.azure_ml import FakeCredential, FakeTransport, block_real_network, install_routes
        from tests.fakes.azure_ml_jobs import NODE_BLOB_DIR_VARIABLE, NODE_REQUEST_LOG_VARIABLE
        from tests.fakes.blob_storage import DirectoryBlobs, RequestLog, install_blob_routes
    finally:
        sys.path.remove(repo_root)

    transport = FakeTransport()
    install_routes(transport)
    install_blob_routes(transport)
    transport.blobs = DirectoryBlobs(Path(os.environ[NODE_BLOB_DIR_VARIABLE]))
    transport.requests = RequestLog(Path(os.environ[NODE_REQUEST_LOG_VARIABLE]))

    class NodeBlobServiceClient(azure.storage.blob.BlobServiceClient):
        def __init__(self, account_url, credential=None, **kwargs):
            kwargs.setdefault("transport", transport)
            super().__init__(account_url, credential=credential, **kwargs)

    class ManagedIdentity(FakeCredential):
        def __init__(self, **_kwargs) -> None:
            super().__init__()

    azure.storage.blob.BlobServiceClient = NodeBlobServiceClient
    azure.identity.DefaultAzureCredential = ManagedIdentity

    class _Patch:  # block_real_network takes a pytest MonkeyPatch; here the patches last the process's life
        setattr = staticmethod(setattr)

    block_real_network(_Patch())


try:
    _install()
except BaseException:
    traceback.print_exc()
    sys.stderr.write("The fake Azure ML node could not install its Azure fakes; the job stops here.\n")
    sys.stderr.flush()
    os._exit(70)
