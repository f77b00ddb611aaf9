// A test wallet: one EIP-1193 provider per account, each announced by EIP-6963
// (https://eips.ethereum.org/EIPS/eip-6963) as a browser extension would. It forwards every request to
// Anvil, whose development accounts are unlocked: Anvil itself signs eth_signTypedData_v4 and
// eth_sendTransaction with the account's key. Each provider acts for its own account only.
// Set before it runs: window.__TEST_WALLETS__ = { rpcUrl, wallets: [{ uuid, name, address }] }.
(() => {
  const { rpcUrl, wallets } = window.__TEST_WALLETS__;
  const log = (window.__walletRequests = []);
  let nextId = 0;
  const signerOf = (method, params) => {
    if (method === 'eth_signTypedData_v4' || method === 'eth_sign') return params[0];
    if (method === 'personal_sign') return params[1];
    if (method === 'eth_sendTransaction') return params[0].from;
    return null;
  };
  for (const wallet of wallets) {
    const provider = {
      async request({ method, params = [] }) {
        log.push({ wallet: wallet.name, method });
        if (method === 'eth_requestAccounts' || method === 'eth_accounts') return [wallet.address];
        const signer = signerOf(method, params);
        if (signer !== null && signer.toLowerCase() !== wallet.address.toLowerCase()) {
          throw Object.assign(new Error(`${wallet.name} holds no key for ${signer}`), { code: 4100 });
        }
        const response = await fetch(rpcUrl, {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify({ jsonrpc: '2.0', id: ++nextId, method, params }),
        });
        const body = await response.json();
        if (body.error) throw Object.assign(new Error(body.error.message), body.error);
        return body.result;
      },
      on() {},
      removeListener() {},
    };
    const detail = Object.freeze({
      info: { uuid: wallet.uuid, name: wallet.name, icon: 'data:image/svg+xml,%3Csvg xmlns="http://www.w3.org/2000/svg"/%3E', rdns: 'org.suanwang.test' },
      provider,
    });
    const announce = () => window.dispatchEvent(new CustomEvent('eip6963:announceProvider', { detail }));
    window.addEventListener('eip6963:requestProvider', announce);
    announce();
  }
})();
