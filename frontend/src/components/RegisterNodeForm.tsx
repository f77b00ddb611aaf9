import { useState, type FormEvent } from 'react';
import { keccak256, parseUnits, toBytes, type Address } from 'viem';
import type { DeploymentOut, MemberOut } from '../api/client';
import { describeError, sendContractTx, type Wallet } from '../chain';
import { parsePrefix } from '../ipv6';

// Plain words for the registry's custom errors (contracts/interfaces/INodeRegistry.sol).
const REGISTRY_ERRORS: Record<string, string> = {
  ZeroCapacity: 'A node must offer some compute in at least one class.',
  InvalidTier: 'The tier must be 0 (small) to 3 (super-large).',
  InvalidGpu: 'GPU model and GPU count must be given together.',
  InvalidLocatorLength: 'The locator prefix length must be 1 to 128.',
  NotAnOperator: 'The chosen network operator is not an operator member.',
  NotSeller: 'This account may not sell compute at the current stage.',
  NotMember: 'This account is not a member of the federation.',
  UnknownNode: 'There is no such node.',
  NotNodeOwner: 'Only the owner of the node may change it.',
  InvalidNodeStatus: 'The node is not in a state that allows this.',
};

interface Values {
  logicCu: string;
  parallelCu: string;
  neuralCu: string;
  memoryGib: string;
  gpuModel: string;
  gpuCount: string;
  tier: string;
  price: string;
  operator: string;
  domain: string;
  router: string;
  locator: string;
}

const INITIAL: Values = {
  logicCu: '64',
  parallelCu: '19.5',
  neuralCu: '312',
  memoryGib: '256',
  gpuModel: '0',
  gpuCount: '0',
  tier: '1',
  price: '1.5',
  operator: '',
  domain: 'Cernet',
  router: 'Beijing',
  locator: 'fc00:0:1::/48',
};

type Errors = Partial<Record<keyof Values, string>>;

const MAX_U64 = 2n ** 64n - 1n;

function toMilli(text: string, field: keyof Values, errors: Errors): bigint {
  if (!/^\d+(\.\d{1,3})?$/.test(text.trim())) {
    errors[field] = 'a non-negative number with at most 3 decimals';
    return 0n;
  }
  const value = parseUnits(text.trim(), 3);
  if (value > MAX_U64) errors[field] = 'too large';
  return value;
}

function toInt(text: string, field: keyof Values, errors: Errors, max: number): number {
  const value = Number(text);
  if (!/^\d+$/.test(text.trim()) || value > max) errors[field] = `a whole number from 0 to ${max}`;
  return value;
}

/** Checks every field before anything is signed; returns the NodeSpec tuple or the errors per field. */
export function validate(v: Values): { spec?: Record<string, unknown>; errors: Errors } {
  const errors: Errors = {};
  const logicMcu = toMilli(v.logicCu, 'logicCu', errors);
  const parallelMcu = toMilli(v.parallelCu, 'parallelCu', errors);
  const neuralMcu = toMilli(v.neuralCu, 'neuralCu', errors);
  if (!errors.logicCu && !errors.parallelCu && !errors.neuralCu && logicMcu + parallelMcu + neuralMcu === 0n) {
    errors.logicCu = 'a node must offer compute in at least one class';
  }
  const memoryMib = toMilli(v.memoryGib, 'memoryGib', errors) * 1024n / 1000n;
  if (!errors.memoryGib && memoryMib >= 2n ** 32n) errors.memoryGib = 'at most 4,194,303 GiB';
  const gpuModel = toInt(v.gpuModel, 'gpuModel', errors, 65535);
  const gpuCount = toInt(v.gpuCount, 'gpuCount', errors, 65535);
  if (!errors.gpuModel && !errors.gpuCount && (gpuModel === 0) !== (gpuCount === 0)) {
    errors.gpuCount = 'give a GPU model and a GPU count together (both 0 for none)';
  }
  const tier = toInt(v.tier, 'tier', errors, 3);
  let pricePerCuHour = 0n;
  if (!/^\d+(\.\d{1,18})?$/.test(v.price.trim())) errors.price = 'a token amount such as 1.5';
  else pricePerCuHour = parseUnits(v.price.trim(), 18);
  if (!/^0x[0-9a-fA-F]{40}$/.test(v.operator)) errors.operator = 'choose the network operator';
  if (!v.domain.trim()) errors.domain = 'the operator network the router is in, e.g. Cernet';
  if (!v.router.trim()) errors.router = 'the router label as in the topology, e.g. Beijing';
  let locator = { bytes16: '0x' as `0x${string}`, length: 0 };
  try {
    locator = parsePrefix(v.locator);
  } catch (e) {
    errors.locator = (e as Error).message;
  }
  if (Object.keys(errors).length > 0) return { errors };
  return {
    errors,
    spec: {
      logicMcu,
      parallelMcu,
      neuralMcu,
      memoryMib: Number(memoryMib),
      gpuModel,
      gpuCount,
      tier,
      pricePerCuHour,
      operator: v.operator as Address,
      router: keccak256(toBytes(`${v.domain.trim()}/${v.router.trim()}`)),
      locator: locator.bytes16,
      locatorLength: locator.length,
    },
  };
}

export function RegisterNodeForm({
  deployment,
  wallet,
  operators,
  onRegistered,
}: {
  deployment: DeploymentOut;
  wallet: Wallet | null;
  operators: MemberOut[];
  onRegistered: () => void;
}) {
  const [values, setValues] = useState<Values>({ ...INITIAL, operator: operators[0]?.address ?? '' });
  const [errors, setErrors] = useState<Errors>({});
  const [status, setStatus] = useState<{ kind: 'idle' | 'pending' | 'done' | 'error'; text: string }>({ kind: 'idle', text: '' });

  const operator = values.operator || operators[0]?.address || '';
  const set = (key: keyof Values) => (e: { target: { value: string } }) => setValues({ ...values, [key]: e.target.value });

  async function submit(e: FormEvent) {
    e.preventDefault();
    const { spec, errors: found } = validate({ ...values, operator });
    setErrors(found);
    if (!spec) {
      setStatus({ kind: 'error', text: 'Fix the marked fields; nothing was signed.' });
      return;
    }
    if (!wallet) {
      setStatus({ kind: 'error', text: 'Choose an account first.' });
      return;
    }
    setStatus({ kind: 'pending', text: 'Checking the registration against the chain…' });
    try {
      const receipt = await sendContractTx(deployment, wallet, 'NodeRegistry', 'registerNode', [spec], (hash) =>
        setStatus({ kind: 'pending', text: `Pending: ${hash.slice(0, 14)}…` }),
      );
      setStatus({ kind: 'done', text: `Confirmed in block ${receipt.blockNumber}.` });
      onRegistered();
    } catch (err) {
      setStatus({ kind: 'error', text: `Rejected: ${describeError(err, REGISTRY_ERRORS)}` });
    }
  }

  const field = (key: keyof Values, label: string, hint?: string) => (
    <div className="field">
      <label htmlFor={`f-${key}`}>{label}</label>
      <input
        id={`f-${key}`}
        name={key}
        value={values[key]}
        onChange={set(key)}
        aria-invalid={errors[key] ? true : undefined}
        aria-describedby={errors[key] ? `e-${key}` : hint ? `h-${key}` : undefined}
      />
      {errors[key] ? (
        <span id={`e-${key}`} className="field-error" role="alert">{errors[key]}</span>
      ) : hint ? (
        <span id={`h-${key}`} className="hint">{hint}</span>
      ) : null}
    </div>
  );

  return (
    <section className="card" aria-labelledby="register-heading">
      <h2 id="register-heading">Register a node</h2>
      <form onSubmit={submit} noValidate>
        <fieldset>
          <legend>Compute (CU, by class of work)</legend>
          <div className="grid3">
            {field('logicCu', 'Logic', 'scalar / integer')}
            {field('parallelCu', 'Parallel', 'FP32 / FP64 vector')}
            {field('neuralCu', 'Neural', 'tensor FP16 / INT8')}
          </div>
        </fieldset>
        <div className="grid3">
          {field('memoryGib', 'Memory (GiB)')}
          {field('gpuModel', 'GPU model (catalog no.)', '0 = none')}
          {field('gpuCount', 'GPU count')}
        </div>
        <div className="grid3">
          <div className="field">
            <label htmlFor="f-tier">Tier</label>
            <select id="f-tier" value={values.tier} onChange={set('tier')}>
              <option value="0">small</option>
              <option value="1">medium</option>
              <option value="2">large</option>
              <option value="3">super-large</option>
            </select>
          </div>
          {field('price', 'Price per CU-hour (tokens)')}
          <div className="field">
            <label htmlFor="f-operator">Network operator</label>
            <select id="f-operator" value={operator} onChange={set('operator')} aria-invalid={errors.operator ? true : undefined}>
              {operators.map((m) => (
                <option key={m.address} value={m.address}>{m.name}</option>
              ))}
            </select>
            {errors.operator && <span className="field-error" role="alert">{errors.operator}</span>}
          </div>
        </div>
        <div className="grid3">
          {field('domain', 'Operator network')}
          {field('router', 'Attachment router')}
          {field('locator', 'SRv6 locator', 'IPv6 prefix, /48 by default')}
        </div>
        <div className="actions">
          <button type="submit" disabled={status.kind === 'pending'}>Register node</button>
          <p role="status" aria-live="polite" className={`status ${status.kind}`} data-testid="register-status">{status.text}</p>
        </div>
      </form>
    </section>
  );
}
