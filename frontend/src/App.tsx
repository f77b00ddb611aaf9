import { useCallback, useEffect, useMemo, useState } from 'react';
import { api, errorMessage, type DeploymentOut, type DeviceOut, type MemberOut, type TopologyOut } from './api/client';
import { connectWallet, DEV_CHAIN_ID, DEV_KEY_LABEL, devWallet, type Wallet } from './chain';
import { shortAddress } from './format';
import { BuyerPage } from './pages/BuyerPage';
import { MarketPage } from './pages/MarketPage';
import { OperatorPage } from './pages/OperatorPage';
import { ArbiterPage } from './pages/ArbiterPage';
import { ProviderPage } from './pages/ProviderPage';
import { SharedContext, type Shared } from './state';
import { watchWallets, type AnnouncedWallet } from './wallets';

const TABS = [
  { id: 'buyer', label: 'Buyer', page: BuyerPage },
  { id: 'provider', label: 'Provider', page: ProviderPage },
  { id: 'operator', label: 'Operator', page: OperatorPage },
  { id: 'arbiter', label: 'Arbiter', page: ArbiterPage },
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
  const [browserWallets, setBrowserWallets] = useState<AnnouncedWallet[]>([]);
  const [connecting, setConnecting] = useState<string | null>(null);
  const [error, setError] = useState<string | null>(null);
  const [tab, setTab] = useState(tabFromHash);
  const [chainVersion, setChainVersion] = useState(0);

  useEffect(() => {
    const onHash = () => setTab(tabFromHash());
    window.addEventListener('hashchange', onHash);
    return () => window.removeEventListener('hashchange', onHash);
  }, []);

  useEffect(() => watchWallets(setBrowserWallets), []);

  useEffect(() => {
    api.GET('/api/deployment').then(({ data, error: err }) => {
      if (err) setError(errorMessage(err));
      else if (data) {
        setDeployment(data);
        // On the local chain only, start with the first development account, so the demo works at once.
        const first = data.chain_id === DEV_CHAIN_ID ? data.accounts.find((a) => a.private_key) : undefined;
        if (first) setWallet((w) => w ?? devWallet(data, first));
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

  // Follow the browser wallet when its owner switches account in it (or disconnects this page).
  useEffect(() => {
    const provider = wallet?.provider;
    const found = browserWallets.find((w) => `eip6963:${w.info.uuid}` === wallet?.source);
    if (!provider?.on || !found || !deployment) return;
    const onAccounts = (accounts: string[]) => {
      if (accounts.length === 0) setWallet(null);
      else if (accounts[0].toLowerCase() !== wallet?.address.toLowerCase()) {
        connectWallet(deployment, found).then(setWallet, (e) => setError(`Could not follow the wallet: ${(e as Error).message}`));
      }
    };
    provider.on('accountsChanged', onAccounts);
    return () => provider.removeListener?.('accountsChanged', onAccounts);
  }, [wallet, browserWallets, deployment]);

  const devAccounts = deployment?.chain_id === DEV_CHAIN_ID ? deployment.accounts.filter((a) => a.private_key) : [];

  async function chooseAccount(value: string) {
    if (!deployment) return;
    setError(null);
    const found = browserWallets.find((w) => `eip6963:${w.info.uuid}` === value);
    try {
      if (found) {
        setConnecting(found.info.name);
        setWallet(await connectWallet(deployment, found));
      } else {
        const account = devAccounts.find((a) => a.address === value);
        if (account) setWallet(devWallet(deployment, account));
      }
    } catch (e) {
      setError(`Could not connect: ${(e as Error).message}`);
    } finally {
      setConnecting(null);
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
          <select id="account" disabled={!deployment} value={wallet?.source ?? ''} onChange={(e) => void chooseAccount(e.target.value)}>
            {!wallet && <option value="">choose…</option>}
            <optgroup label="Browser wallets (EIP-6963)">
              {browserWallets.map((w) => (
                <option key={w.info.uuid} value={`eip6963:${w.info.uuid}`}>
                  {w.info.name}{wallet?.source === `eip6963:${w.info.uuid}` ? ` (${wallet.address.slice(0, 6)}…${wallet.address.slice(-4)})` : ''}
                </option>
              ))}
              {browserWallets.length === 0 && <option disabled value="none">no browser wallet found</option>}
            </optgroup>
            {devAccounts.length > 0 && (
              <optgroup label={`Demo accounts: ${DEV_KEY_LABEL}`}>
                {devAccounts.map((a) => (
                  <option key={a.address} value={a.address}>
                    {a.name} ({a.role_names.join(', ')}), {DEV_KEY_LABEL}
                  </option>
                ))}
              </optgroup>
            )}
          </select>
          {connecting && <span className="chain" role="status">connect in {connecting}…</span>}
          {wallet && (
            <span className="chain" data-testid="signer" title={wallet.address}>
              signing with {wallet.label}
            </span>
          )}
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
