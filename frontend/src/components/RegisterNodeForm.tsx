import { useState, type FormEvent } from 'react';
import { parseUnits, type Address } from 'viem';
import type { RouterOut } from '../api/client';
import { describeError } from '../chain';
import { formatPrefix } from '../ipv6';
import { nodeKeyOf } from '../sealed';
import { useShared, useTx } from '../state';
import { Field } from './Field';
import { TxStatus } from './TxStatus';

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
  router: string;
  encryptionKey: string;
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
  router: '',
  encryptionKey: '',
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
export function validate(v: Values, routers: RouterOut[]): { spec?: Record<string, unknown>; errors: Errors } {
  const errors: Errors = {};
  const logicMcu = toMilli(v.logicCu, 'logicCu', errors);
  const parallelMcu = toMilli(v.parallelCu, 'parallelCu', errors);
  const neuralMcu = toMilli(v.neuralCu, 'neuralCu', errors);
  if (!errors.logicCu && !errors.parallelCu && !errors.neuralCu && logicMcu + parallelMcu + neuralMcu === 0n) {
    errors.logicCu = 'a node must offer compute in at least one class';
  }
  const memoryMib = (toMilli(v.memoryGib, 'memoryGib', errors) * 1024n) / 1000n;
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
  const router = routers.find((r) => r.name === v.router);
  if (!router) errors.router = 'choose the router the node is attached to';
  const key = v.encryptionKey.trim();
  if (key !== '' && !/^0x[0-9a-fA-F]{64}$/.test(key)) errors.encryptionKey = '0x and 64 hex digits (an X25519 public key), or empty';
  if (Object.keys(errors).length > 0 || !router) return { errors };
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
      router: router.router_id,
      locator: router.locator_bytes16,
      locatorLength: router.locator_length,
      // None typed: the key the seller's account derives (submit asks the wallet), as its agent does.
      encryptionKey: (key === '' ? null : key.toLowerCase()) as `0x${string}` | null,
    },
  };
}

export function RegisterNodeForm({ router: pickedRouter }: { router?: string }) {
  const { members, topology, devices, wallet, deployment } = useShared();
  const operators = members.filter((m) => m.active && m.role_names.includes('operator'));
  const routers = topology?.routers ?? [];
  const [values, setValues] = useState<Values>(INITIAL);
  const [errors, setErrors] = useState<Errors>({});
  const tx = useTx();

  const operator = values.operator || operators[0]?.address || '';
  const routerName = values.router || pickedRouter || routers[0]?.name || '';
  const router = routers.find((r) => r.name === routerName);
  const set = (key: keyof Values) => (value: string) => setValues({ ...values, [key]: value });

  async function submit(e: FormEvent) {
    e.preventDefault();
    const { spec, errors: found } = validate({ ...values, operator, router: routerName }, routers);
    setErrors(found);
    if (!spec) {
      tx.setState({ kind: 'error', text: 'Fix the marked fields; nothing was signed.' });
      return;
    }
    let encryptionKey = spec.encryptionKey;
    if (encryptionKey === null) {
      if (!wallet) {
        tx.setState({ kind: 'error', text: 'Choose an account first.' });
        return;
      }
      try {
        tx.setState({ kind: 'pending', text: 'Sign the text that derives your node encryption key…' });
        encryptionKey = (await nodeKeyOf(wallet, deployment.chain_id)).publicHex;
      } catch (e) {
        tx.setState({ kind: 'error', text: `No node key: ${describeError(e)}` });
        return;
      }
    }
    await tx.send([{ contract: 'NodeRegistry', fn: 'registerNode', args: [{ ...spec, encryptionKey }], label: 'Register' }]);
  }

  const text = (key: keyof Values, label: string, hint?: string) => (
    <Field id={`f-${key}`} label={label} value={values[key]} onChange={set(key)} error={errors[key]} hint={hint} />
  );
  const select = (key: keyof Values, label: string, value: string, options: [string, string][], hint?: string) => (
    <Field id={`f-${key}`} label={label} error={errors[key]} hint={hint}>
      <select
        id={`f-${key}`}
        value={value}
        onChange={(e) => set(key)(e.target.value)}
        aria-invalid={errors[key] ? true : undefined}
        aria-describedby={errors[key] ? `f-${key}-error` : hint ? `f-${key}-hint` : undefined}
      >
        {options.map(([v, l]) => (
          <option key={v} value={v}>{l}</option>
        ))}
      </select>
    </Field>
  );

  return (
    <section className="card" aria-labelledby="register-heading">
      <h2 id="register-heading">Register a node</h2>
      <form onSubmit={submit} noValidate>
        <fieldset>
          <legend>Compute (CU, by class of work)</legend>
          <div className="grid3">
            {text('logicCu', 'Logic', 'scalar / integer')}
            {text('parallelCu', 'Parallel', 'FP32 / FP64 vector')}
            {text('neuralCu', 'Neural', 'tensor FP16 / INT8')}
          </div>
        </fieldset>
        <div className="grid3">
          {text('memoryGib', 'Memory (GiB)')}
          {select('gpuModel', 'GPU model', values.gpuModel, [
            ['0', 'none'],
            ...devices.filter((d) => d.kind !== 'cpu').map((d) => [String(d.code), `${d.name} (${d.kind.toUpperCase()})`] as [string, string]),
          ])}
          {text('gpuCount', 'GPU count')}
        </div>
        <div className="grid3">
          {select('tier', 'Tier', values.tier, [
            ['0', 'small'],
            ['1', 'medium'],
            ['2', 'large'],
            ['3', 'super-large'],
          ])}
          {text('price', 'Price per CU-hour (tokens)')}
          {select('operator', 'Network operator', operator, operators.map((m) => [m.address, m.name] as [string, string]))}
        </div>
        <div className="grid3">
          {select(
            'router',
            'Attachment router',
            routerName,
            routers.map((r) => [r.name, `${r.label} (${r.operator})`] as [string, string]),
            'or pick it on the map',
          )}
          <Field id="f-locator" label="SRv6 locator" hint="the router's locator, from the topology">
            <output id="f-locator" className="readout">{router ? formatPrefix(`${router.locator_bytes16}/${router.locator_length}`) : '—'}</output>
          </Field>
          {text('encryptionKey', 'Encryption key (X25519, optional)', 'the public key buyers seal job specifications to; empty: the one your account derives, as your provider agent does')}
        </div>
        <div className="actions">
          <button type="submit" disabled={tx.state.kind === 'pending'}>Register node</button>
          <TxStatus state={tx.state} testId="register-status" />
        </div>
      </form>
    </section>
  );
}
