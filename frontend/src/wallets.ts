// Browser wallets found by EIP-6963 (https://eips.ethereum.org/EIPS/eip-6963): each wallet announces
// itself with an `eip6963:announceProvider` event carrying its info and its EIP-1193 provider, in answer to
// the page's `eip6963:requestProvider` (and once on its own load). Several wallets can live side by side;
// nothing is read from `window.ethereum`, which the last extension to load overwrites.

/** EIP-1193: the one method every wallet provider has. */
export interface Eip1193Provider {
  request(args: { method: string; params?: unknown }): Promise<unknown>;
  /** EIP-1193 events; `accountsChanged` says the person switched (or disconnected) the account. */
  on?(event: 'accountsChanged', listener: (accounts: string[]) => void): void;
  removeListener?(event: 'accountsChanged', listener: (accounts: string[]) => void): void;
}

/** EIP-6963's EIP6963ProviderInfo. */
export interface WalletInfo {
  uuid: string;
  name: string;
  icon: string; // a data URI
  rdns: string;
}

export interface AnnouncedWallet {
  info: WalletInfo;
  provider: Eip1193Provider;
}

function isAnnouncement(detail: unknown): detail is AnnouncedWallet {
  const d = detail as Partial<AnnouncedWallet> | null;
  return (
    !!d?.info &&
    typeof d.info.uuid === 'string' &&
    typeof d.info.name === 'string' &&
    typeof d.provider?.request === 'function'
  );
}

/** Listens for announced wallets, asks every wallet to announce itself, and reports the list (one entry per
 *  uuid, in the order they answered) after each new one. Returns the function that stops listening. */
export function watchWallets(onChange: (wallets: AnnouncedWallet[]) => void): () => void {
  const byUuid = new Map<string, AnnouncedWallet>();
  const onAnnounce = (event: Event) => {
    const detail = (event as CustomEvent<unknown>).detail;
    if (!isAnnouncement(detail) || byUuid.has(detail.info.uuid)) return;
    byUuid.set(detail.info.uuid, { info: detail.info, provider: detail.provider });
    onChange([...byUuid.values()]);
  };
  window.addEventListener('eip6963:announceProvider', onAnnounce);
  window.dispatchEvent(new Event('eip6963:requestProvider'));
  return () => window.removeEventListener('eip6963:announceProvider', onAnnounce);
}
