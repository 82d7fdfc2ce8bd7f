/**
 * The API key box shared by both pages. The key lives in this tab's sessionStorage only (gone when the tab
 * closes; never in localStorage, a cookie or a URL) and is sent only as the Bearer header to this origin's API.
 */
const STORAGE = "stitch-api-key";

export function keyBox(onChange: (key: string) => void = () => {}): () => string {
  const input = document.getElementById("api-key") as HTMLInputElement;
  const forget = document.getElementById("forget-key") as HTMLButtonElement;
  input.value = sessionStorage.getItem(STORAGE) ?? "";
  const save = () => {
    const key = input.value.trim();
    if (key) sessionStorage.setItem(STORAGE, key);
    else sessionStorage.removeItem(STORAGE);
    onChange(key);
  };
  input.addEventListener("change", save);
  forget.addEventListener("click", () => {
    input.value = "";
    save();
    input.focus();
  });
  return () => input.value.trim();
}

export function showError(el: HTMLElement, err: unknown): void {
  const e = err as { message?: string; code?: string | null; requestId?: string | null };
  el.hidden = false;
  el.textContent = [e.message ?? String(err), e.code && `(${e.code})`, e.requestId && `request ${e.requestId}`]
    .filter(Boolean)
    .join(" ");
}

export const $ = <T extends HTMLElement = HTMLElement>(id: string): T => document.getElementById(id) as T;

export const usd = (value: number): string => `$${value.toFixed(value !== 0 && value < 0.01 ? 6 : 4)}`;
export const ms = (value: number): string => `${value.toFixed(value < 10 ? 2 : 1)} ms`;
