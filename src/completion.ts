/**
 * `completion bash|zsh|fish`: scripts generated from the command table and its option specs, so a
 * flag declared in commands/specs.ts completes without anything here changing.
 */
import { SHELLS, type Command, type RunCommand } from './command.js';
import { usageError } from './errors.js';
import { closestName, type OptionSpec } from './options.js';
import { writeResult } from './result.js';

type Shell = (typeof SHELLS)[number];

const OUTPUT_FORMATS = ['json', 'text', 'table'];
/** Values a shell can offer for an option: the formats, the shells, or files. */
const valuesOf = (option: OptionSpec): 'formats' | 'files' | undefined =>
  option.name === 'output' ? 'formats' : option.valueName === 'file' || option.valueName === 'dir' ? 'files' : undefined;

/** The words that name an option: its name, its aliases, its short form. */
const optionWords = (option: OptionSpec) => [`--${option.name}`, ...(option.aliases ?? []).map((alias) => `--${alias}`), ...(option.short ? [`-${option.short}`] : [])];
const flagWords = (command: Command) => command.options.flatMap(optionWords);
/** An alias completes as the option it stands for, described as such. */
const withAliases = (options: readonly OptionSpec[]): OptionSpec[] =>
  options.flatMap((option) => [option, ...(option.aliases ?? []).map((alias) => ({ ...option, name: alias, aliases: [], short: undefined, description: `Alias of --${option.name}: ${option.description}` }))]);

export function renderBashCompletion(commands: readonly Command[]): string {
  const valued = (command: Command, kind: 'formats' | 'files' | undefined) =>
    command.options.filter((option) => option.type === 'string' && valuesOf(option) === kind).flatMap(optionWords);
  const pattern = (words: string[]) => words.join('|');
  return [
    '# bash completion for etcd-cloudinit: source <(etcd-cloudinit completion bash)',
    '_etcd_cloudinit() {',
    '  local cur="${COMP_WORDS[COMP_CWORD]}" prev="${COMP_WORDS[COMP_CWORD-1]}"',
    '  COMPREPLY=()',
    '  if [[ $COMP_CWORD -eq 1 ]]; then',
    `    COMPREPLY=($(compgen -W "${commands.map((command) => command.name).join(' ')}" -- "$cur"))`,
    '    return 0',
    '  fi',
    '  case "${COMP_WORDS[1]}" in',
    ...commands.flatMap((command) => {
      const formats = valued(command, 'formats');
      const files = valued(command, 'files');
      const otherValues = valued(command, undefined);
      return [
        `    ${command.name})`,
        '      case "$prev" in',
        ...(formats.length > 0 ? [`        ${pattern(formats)}) COMPREPLY=($(compgen -W "${OUTPUT_FORMATS.join(' ')}" -- "$cur")); return 0 ;;`] : []),
        ...(files.length > 0 ? [`        ${pattern(files)}) COMPREPLY=($(compgen -f -- "$cur")); return 0 ;;`] : []),
        ...(otherValues.length > 0 ? [`        ${pattern(otherValues)}) return 0 ;;`] : []),
        '      esac',
        ...(command.argument ? [`      [[ $cur != -* ]] && { COMPREPLY=($(compgen -W "${command.argument.choices.join(' ')}" -- "$cur")); return 0; }`] : []),
        `      COMPREPLY=($(compgen -W "${flagWords(command).join(' ')}" -- "$cur")) ;;`,
      ];
    }),
    '  esac',
    '  return 0',
    '}',
    'complete -F _etcd_cloudinit etcd-cloudinit',
    '',
  ].join('\n');
}

/** A description inside single quotes, and inside zsh's `[...]` (no brackets) or fish's `-d`. */
const zshText = (text: string) => text.replace(/'/g, `'\\''`).replace(/\[/g, '(').replace(/\]/g, ')');
const fishText = (text: string) => text.replace(/\\/g, '\\\\').replace(/'/g, "\\'");

export function renderZshCompletion(commands: readonly Command[]): string {
  const spec = (option: OptionSpec) => {
    const repeat = option.multiple ? '*' : '';
    const describe = `[${zshText(option.description)}]`;
    const value = option.type === 'boolean' ? '' : `:${zshText(option.valueName ?? 'value')}:${valuesOf(option) === 'formats' ? `(${OUTPUT_FORMATS.join(' ')})` : valuesOf(option) === 'files' ? '_files' : ''}`;
    const long = `'${repeat}--${option.name}${option.type === 'string' ? '=' : ''}${describe}${value}'`;
    return option.short ? [long, `'${repeat}-${option.short}${describe}${value}'`] : [long];
  };
  return [
    '#compdef etcd-cloudinit',
    '# zsh completion for etcd-cloudinit: etcd-cloudinit completion zsh > "${fpath[1]}/_etcd-cloudinit"',
    '_etcd_cloudinit() {',
    '  local -a commands',
    '  commands=(',
    ...commands.map((command) => `    '${command.name}:${zshText(command.summary)}'`),
    '  )',
    '  if (( CURRENT == 2 )); then',
    "    _describe 'command' commands",
    '    return',
    '  fi',
    '  case $words[2] in',
    ...commands.flatMap((command) => [
      `    ${command.name})`,
      `      _arguments -s \\`,
      ...withAliases(command.options).flatMap(spec).map((line) => `        ${line} \\`),
      ...(command.argument ? [`        '1:${command.argument.name}:(${command.argument.choices.join(' ')})' \\`] : []),
      '        && return 0',
      '      ;;',
    ]),
    '  esac',
    '}',
    'compdef _etcd_cloudinit etcd-cloudinit',
    '',
  ].join('\n');
}

export function renderFishCompletion(commands: readonly Command[]): string {
  const names = commands.map((command) => command.name).join(' ');
  return [
    '# fish completion for etcd-cloudinit: etcd-cloudinit completion fish > ~/.config/fish/completions/etcd-cloudinit.fish',
    'complete -c etcd-cloudinit -f',
    ...commands.map((command) => `complete -c etcd-cloudinit -n 'not __fish_seen_subcommand_from ${names}' -a ${command.name} -d '${fishText(command.summary)}'`),
    ...commands.flatMap((command) => {
      const when = `-n '__fish_seen_subcommand_from ${command.name}'`;
      return [
        ...(command.argument ? [`complete -c etcd-cloudinit ${when} -a '${command.argument.choices.join(' ')}'`] : []),
        ...withAliases(command.options).map((option) => {
          const values = valuesOf(option);
          const takes = option.type === 'boolean' ? '' : values === 'formats' ? ` -x -a '${OUTPUT_FORMATS.join(' ')}'` : values === 'files' ? ' -r -F' : ' -x';
          return `complete -c etcd-cloudinit ${when} -l ${option.name}${option.short ? ` -s ${option.short}` : ''}${takes} -d '${fishText(option.description)}'`;
        }),
      ];
    }),
    '',
  ].join('\n');
}

export function renderCompletion(shell: Shell, commands: readonly Command[]): string {
  return shell === 'bash' ? renderBashCompletion(commands) : shell === 'zsh' ? renderZshCompletion(commands) : renderFishCompletion(commands);
}

/** `completion`, for the command table it is given (cli.ts's: this module does not import the CLI). */
export const completionRunner = (commands: readonly Command[]): RunCommand => async (flags, context) => {
  const words = (flags._ as string[] | undefined) ?? [];
  const shell = words[0];
  if (shell === undefined) throw usageError('validate', `shell: is required: one of ${SHELLS.join(', ')} (for example: etcd-cloudinit completion bash)`);
  if (words.length > 1) throw usageError('parse', `unexpected argument ${JSON.stringify(words[1])}: completion takes one shell`);
  if (!(SHELLS as readonly string[]).includes(shell)) {
    const suggestion = closestName(shell, SHELLS);
    throw usageError('validate', `shell: ${JSON.stringify(shell)} is not one of ${SHELLS.join(', ')}${suggestion ? `; did you mean ${suggestion}?` : ''}`);
  }
  const script = renderCompletion(shell as Shell, commands);
  writeResult(context, { shell, script }, () => script);
  return 0;
};
