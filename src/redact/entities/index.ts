/** The built-in detectors and what the scanner knows about each entity type. */
import type { Detector, EntityInfo } from '../types.js';
import { creditCardDetector } from './credit-card.js';
import { cryptoDetector } from './crypto.js';
import { dateOfBirthDetector } from './date-of-birth.js';
import { emailDetector } from './email.js';
import { ibanDetector } from './iban.js';
import { ipDetector } from './ip.js';
import { macDetector } from './mac.js';
import { createPhoneDetector, type PhoneValidation } from './phone.js';
import { createSecretsDetector, SECRET_ENTITIES } from './secrets.js';
import { urlDetector } from './url.js';
import { usSsnDetector } from './us-ssn.js';

export { SECRET_ENTITIES };

export const STRUCTURED_ENTITIES = [
  'EMAIL_ADDRESS',
  'PHONE_NUMBER',
  'CREDIT_CARD',
  'US_SSN',
  'IBAN_CODE',
  'IP_ADDRESS',
  'MAC_ADDRESS',
  'URL',
  'CRYPTO',
  'DATE_OF_BIRTH',
] as const;

export const BUILTIN_ENTITIES: readonly string[] = [...STRUCTURED_ENTITIES, ...SECRET_ENTITIES];

export function builtinDetectors(opts: { phoneValidation?: PhoneValidation } = {}): Detector[] {
  return [
    emailDetector,
    createPhoneDetector(opts.phoneValidation),
    creditCardDetector,
    usSsnDetector,
    ibanDetector,
    ipDetector,
    macDetector,
    urlDetector,
    cryptoDetector,
    dateOfBirthDetector,
    createSecretsDetector(),
  ];
}

const info = (context: string[], contextBoost = 0.35, negative?: string[]): EntityInfo =>
  negative ? { context, contextBoost, negative } : { context, contextBoost };

/** Context words (lower case, matched shortly before a finding). */
export const ENTITY_INFO: Record<string, EntityInfo> = {
  EMAIL_ADDRESS: info(['email', 'e-mail', 'mail', 'contact']),
  PHONE_NUMBER: info(['phone', 'telephone', 'tel', 'mobile', 'cell', 'call', 'fax', 'desk', 'office', 'whatsapp', 'sms', 'text me', 'reach me', 'contact', 'landline']),
  CREDIT_CARD: info(['card', 'credit', 'debit', 'visa', 'mastercard', 'amex', 'payment', 'cc'], 0.35, ['ean', 'gtin', 'barcode', 'upc', 'sku', 'isbn', 'tracking', 'order']),
  US_SSN: info(['ssn', 'social security', 'social-security', 'ss#', 'ss #', 'taxpayer'], 0.4),
  IBAN_CODE: info(['iban', 'bank', 'account', 'transfer']),
  IP_ADDRESS: info(['ip', 'address', 'host', 'server', 'client'], 0.1, ['version', 'release', 'build', 'v.']),
  MAC_ADDRESS: info(['mac', 'ethernet', 'wifi', 'nic', 'hardware']),
  URL: info(['url', 'link', 'website', 'site']),
  CRYPTO: info(['wallet', 'bitcoin', 'btc', 'ethereum', 'eth', 'crypto', 'address']),
  DATE_OF_BIRTH: info(['born', 'birth', 'dob', 'd.o.b', 'birthday', 'date of birth', 'birthdate', 'geboren', 'né le', 'née le'], 0.5),
  AWS_SECRET_ACCESS_KEY: info(['aws_secret', 'secret_access_key', 'secret access key', 'aws secret', 'secretaccesskey', 'aws'], 0.4),
};
