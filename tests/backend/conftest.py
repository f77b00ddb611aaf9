from tests.support.stack import chain, deployed_state

__all__ = ["chain", "deployed_state"]
