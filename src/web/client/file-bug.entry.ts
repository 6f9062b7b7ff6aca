/// <reference lib="dom" />
/** The file-a-bug page: choosing a product offers only its versions and components, without a reload. */
import { wireProductChoice } from './product-choice.ts';

const form = document.getElementById('file-bug-form');
if (form instanceof HTMLFormElement) wireProductChoice(form);
