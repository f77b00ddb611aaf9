import { useCallback, useEffect, useMemo, useState } from 'react';
import { api, errorMessage, type DeploymentOut, type DeviceOut, type MemberOut, type TopologyOut } from './api/client';
import { devWallet, injectedWallet, type Wallet } from './chain';
import { shortAddress } from './format';
import { BuyerPage } from './pages/BuyerPage';
import { MarketPage } from './pages/MarketPage';
import { OperatorPage } from './pages/OperatorPage';
import { ProviderPage } from './pages/ProviderPage';
import { SharedContext, type Shared } from './state';

const TABS = [
  { id: 'buyer', label: 'Buyer', page: BuyerPage },
  { id: 'provider', label: 'Provider', page: ProviderPage },
  { id: 'operator', label: 'Operator', page: OperatorPage },
  { id: 'market', label: 'Market', page: MarketPage },
] as const;

function tabFromHash(): string {
  const id = window.location.hash.replace(/^#\/?/, '');
  return TABS.some((t) => t.id === id) ? id : 'buyer';
}

export function App() {
  const [deployment, setDeployment] = useState<DeploymentOut | null>(null);
  const [members, setMembers] = useState<MemberOut[]>([]);
  const [topology, setTopology] = useState<TopologyOut | null>(null);
  const [devices, setDevices] = useState<DeviceOut[]>([]);
  const [wallet, setWallet] = useState<Wallet | null>(null);
  const [error, setError] = useState<string | null>(null);
  const [tab, setTab] = useState(tabFromHash);
  const [chainVersion, setChainVersion] = useState(0);

  useEffect(() => {
    const onHash = () => setTab(tabFromHash());
    window.addEventListener('hashchange', onHash);
    return () => window.removeEventListener('hashchange', onHash);
  }, []);

  useEffect(() => {
    api.GET('/api/deployment').then(({ data, error: err }) => {
      if (err) setError(errorMessage(err));
      else if (data) {
        setDeployment(data);
        const first = data.accounts.find((a) => a.private_key);
        if (first) setWallet(devWallet(data, first));
      }
    });
    void api.GET('/api/catalog/devices').then(({ data }) => data && setDevices(data));
    const loadTopology = () => api.GET('/api/topology').then(({ data }) => data && setTopology(data));
    const loadMembers = () => api.GET('/api/members').then(({ data }) => data && setMembers(data));
    void loadTopology();
    void loadMembers();
    const timer = window.setInterval(() => {
      void loadMembers();
      void loadTopology();
    }, 5000);
    return () => window.clearInterval(timer);
  }, []);

  const bumpChain = useCallback(() => {
    setChainVersion((v) => v + 1);
    void api.GET('/api/members').then(({ data }) => data && setMembers(data));
    void api.GET('/api/topology').then(({ data }) => data && setTopology(data));
  }, []);

  const names = useMemo(() => {
    const m = new Map<string, string>();
    for (const a of deployment?.accounts ?? []) m.set(a.address.toLowerCase(), a.name);
    for (const a of members) m.set(a.address.toLowerCase(), a.name);
    return m;
  }, [deployment, members]);
  const nameOf = useCallback((address: string) => names.get(address.toLowerCase()) ?? shortAddress(address), [names]);

  const shared: Shared | null = useMemo(
    () => (deployment ? { deployment, wallet, members, topology, devices, nameOf, chainVersion, bumpChain } : null),
    [deployment, wallet, members, topology, devices, nameOf, chainVersion, bumpChain],
  );

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

  const Page = TABS.find((t) => t.id === tab)?.page ?? BuyerPage;
  const me = members.find((m) => wallet && m.address.toLowerCase() === wallet.address.toLowerCase());

  return (
    <>
      <a className="skip" href="#content">Skip to content</a>
      <header className="topbar">
        <div className="brand">
          <span className="logo" aria-hidden="true">SW</span>
          <div>
            <h1>Suanwang</h1>
            <p className="tagline">compute, with the network path to it</p>
          </div>
        </div>
        <nav aria-label="Sections" className="tabs">
          {TABS.map((t) => (
            <a key={t.id} href={`#/${t.id}`} aria-current={t.id === tab ? 'page' : undefined}>{t.label}</a>
          ))}
        </nav>
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
          {deployment && (
            <span className="chain" title={deployment.rpc_url}>
              chain {deployment.chain_id}
              {me ? '' : wallet ? ' · not a member' : ''}
            </span>
          )}
        </div>
      </header>
      <main id="content" tabIndex={-1}>
        {error && <p role="alert" className="error banner">{error}</p>}
        {shared ? (
          <SharedContext.Provider value={shared}>
            <Page />
          </SharedContext.Provider>
        ) : (
          !error && <p className="muted">Loading the deployment…</p>
        )}
      </main>
    </>
  );
}
