// The contracts' custom errors in plain words (contracts/interfaces/*.sol, contracts/Federation.sol).
export const CONTRACT_ERRORS: Record<string, string> = {
  // NodeRegistry
  ZeroCapacity: 'A node must offer some compute in at least one class.',
  InvalidTier: 'The tier must be 0 (small) to 3 (super-large).',
  InvalidGpu: 'GPU model and GPU count must be given together.',
  InvalidLocatorLength: 'The locator prefix length must be 1 to 128.',
  NotAnOperator: 'The chosen network operator is not an operator member.',
  NotSeller: 'This account may not sell compute at the current stage.',
  UnknownNode: 'There is no such node.',
  NotNodeOwner: 'Only the owner of the node may change it.',
  InvalidNodeStatus: 'The node is not in a state that allows this.',
  // Federation
  NotGovernance: 'Only the federation’s governance may do this at the current stage.',
  NotMember: 'This account is not a member of the federation.',
  MissingRole: 'This account lacks the role this needs.',
  RoleNotAllowedInStage: 'Those roles may not be granted at the current stage.',
  InvalidStageTransition: 'The stage only moves forward, one step at a time.',
  AlreadyMember: 'That account is already a member.',
  InvalidRoles: 'Those roles are not valid.',
  ProposalClosed: 'The vote on this proposal is over (it passed, or its week ran out).',
  AlreadyVoted: 'This account has already voted on this proposal.',
  VotingNotOpen: 'Operators are admitted by vote only in stage 3.',
  OperatorVoteRequired: 'Granting or removing the operator role needs a vote of the operators.',
  FounderIsPermanent: 'The founding operator cannot be removed.',
  UnknownProposal: 'There is no such proposal.',
  CandidateUnderVote: 'That account is the candidate of an open operator vote; it cannot be changed until the vote closes.',
  NotInElectorate: 'Only operators who held the role when the proposal was made may vote on it.',
  // Escrow
  InsufficientBalance: 'The escrow balance is too low for this.',
  ZeroAmount: 'The amount must be more than zero.',
  StakeRequired: 'This would leave less stake than the account’s nodes require.',
  // Market
  UnknownDeal: 'The deal passed does not match the one on chain.',
  InvalidStatus: 'The deal is not in a state that allows this.',
  Unauthorized: 'This account may not do this for this deal.',
  DeadlinePassed: 'The deadline for this step has passed.',
  DeadlineNotReached: 'The deadline has not been reached yet.',
  InsufficientStake: 'The seller’s stake is below what its nodes require.',
  // ERC-20
  ERC20InsufficientBalance: 'The wallet holds too few tokens.',
  ERC20InsufficientAllowance: 'The Market may not pull that many tokens yet (approve first).',
};
