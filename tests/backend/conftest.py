from tests.support.postgres import database_url, postgres_url
from tests.support.slurm import slurm_cluster
from tests.support.stack import chain, deployed_state, deployments

__all__ = ["chain", "database_url", "deployed_state", "deployments", "postgres_url", "slurm_cluster"]
