import { message } from './message.js';

const show = (text) => (document.querySelector('#message').textContent = text);
show(message);

// State that a full reload would lose: it survives an HMR update, which is how you can tell.
let count = 0;
document.querySelector('#add').addEventListener('click', () => {
  document.querySelector('#count').textContent = String(++count);
});

if (import.meta.webpackHot) {
  import.meta.webpackHot.accept('./message.js', () => show(message));
}
