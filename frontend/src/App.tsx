import { useEffect, useMemo, useState } from 'react';
import { api, errorMessage, type DeploymentOut, type MemberOut } from './api/client';
import { devWallet, injectedWallet, type Wallet } from './chain';
import { NodeList } from './components/NodeList';
import { RegisterNodeForm } from './components/RegisterNodeForm';

const OPERATOR_ROLE = 1;

export function App() {
  const [deployment, setDeployment] = useState<DeploymentOut | null>(null);
  const [members, setMembers] = useState<MemberOut[]>([]);
  const [wallet, setWallet] = useState<Wallet | null>(null);
  const [error, setError] = useState<string | null>(null);
  const [refreshKey, setRefreshKey] = useState(0);

  useEffect(() => {
    api.GET('/api/deployment').then(({ data, error: err }) => {
      if (err) setError(errorMessage(err));
      else if (data) {
        setDeployment(data);
        const first = data.accounts.find((a) => a.private_key);
        if (first) setWallet(devWallet(data, first));
      }
    });
    const loadMembers = () =>
      api.GET('/api/members').then(({ data }) => {
        if (data) setMembers(data);
      });
    void loadMembers();
    const timer = window.setInterval(loadMembers, 5000);
    return () => window.clearInterval(timer);
  }, []);

  const operators = useMemo(() => members.filter((m) => m.active && (m.roles & OPERATOR_ROLE) !== 0), [members]);

  async function chooseAccount(value: string) {
    if (!deployment) return;
    setError(null);
    try {
      if (value === 'injected') setWallet(await injectedWallet(deployment));
      else {
        const account = deployment.accounts.find((a) => a.address === value);
        if (account) setWallet(devWallet(deployment, account));
      }
    } catch (e) {
      setError((e as Error).message);
    }
  }

  return (
    <>
      <header className="topbar">
        <div className="brand">
          <span className="logo" aria-hidden="true">SW</span>
          <div>
            <h1>Suanwang</h1>
            <p className="tagline">compute, with the network path to it</p>
          </div>
        </div>
        <div className="wallet">
          <label htmlFor="account">Account</label>
          <select id="account" value={wallet?.address ?? ''} onChange={(e) => void chooseAccount(e.target.value)}>
            {!wallet && <option value="">choose…</option>}
            {deployment?.accounts
              .filter((a) => a.private_key)
              .map((a) => (
                <option key={a.address} value={a.address}>
                  {a.name} ({a.role_names.join(', ')})
                </option>
              ))}
            {wallet && !deployment?.accounts.some((a) => a.address === wallet.address) && (
              <option value={wallet.address}>{wallet.label}</option>
            )}
            <option value="injected">Browser wallet (EIP-1193)…</option>
          </select>
          {deployment && <span className="chain" title={deployment.rpc_url}>chain {deployment.chain_id}</span>}
        </div>
      </header>
      <main>
        {error && <p role="alert" className="error banner">{error}</p>}
        {deployment && (
          <RegisterNodeForm
            key={operators.length}
            deployment={deployment}
            wallet={wallet}
            operators={operators}
            onRegistered={() => setRefreshKey((k) => k + 1)}
          />
        )}
        <NodeList refreshKey={refreshKey} />
      </main>
    </>
  );
}
