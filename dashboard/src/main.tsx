// Entry point: global styles and the app shell. Each view is its own chunk, loaded when
// first visited, so the first page (sign-in, or the view of the URL) stays small.

import { render } from 'preact';
import './styles.css';
import { App } from './App';

const root = document.getElementById('app');
if (root) render(<App />, root);
