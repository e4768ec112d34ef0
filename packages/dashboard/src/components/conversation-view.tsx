import { useState } from 'react';
import type { Block, Conversation, Message } from '../lib/conversation.js';

/** Text blocks longer than this many lines or characters show their beginning and a "Show all" button. */
const COLLAPSE_LINES = 24;
const COLLAPSE_CHARS = 2000;

/** A conversation as a person reads it: system prompt, tool definitions folded away, turns, the answer. */
export function ConversationView({ conversation }: { conversation: Conversation }) {
  return (
    <div className="stack">
      {conversation.system.length > 0 && <MessageView message={{ role: 'system', blocks: conversation.system }} title="System prompt" />}
      {conversation.tools.length > 0 && (
        <details className="panel">
          <summary>
            {conversation.tools.length} tool definition{conversation.tools.length === 1 ? '' : 's'}:{' '}
            <span className="muted">{conversation.tools.map((tool) => tool.name).join(', ')}</span>
          </summary>
          <div className="stack" style={{ marginTop: 10 }}>
            {conversation.tools.map((tool) => (
              <details key={tool.name}>
                <summary className="mono">{tool.name}</summary>
                {tool.description && (
                  <p className="text" style={{ whiteSpace: 'pre-wrap' }}>
                    {tool.description}
                  </p>
                )}
                {tool.schema && <pre className="code">{tool.schema}</pre>}
              </details>
            ))}
          </div>
        </details>
      )}
      {conversation.messages.map((message, index) => (
        // Messages have no id of their own; their order is fixed for a stored call.
        // biome-ignore lint/suspicious/noArrayIndexKey: see above
        <MessageView key={index} message={message} />
      ))}
      {conversation.response ? (
        <MessageView message={conversation.response} title="Response" />
      ) : (
        <p className="muted">The response body holds no readable answer; the raw response tab shows it as stored.</p>
      )}
    </div>
  );
}

function MessageView({ message, title }: { message: Message; title?: string }) {
  return (
    <article className={`message role-${message.role}`}>
      <div className="role">{title ?? message.role}</div>
      {message.blocks.length === 0 && <span className="muted">(empty)</span>}
      {message.blocks.map((block, index) => (
        // biome-ignore lint/suspicious/noArrayIndexKey: blocks of a stored message never reorder
        <BlockView key={index} block={block} />
      ))}
    </article>
  );
}

function BlockView({ block }: { block: Block }) {
  switch (block.kind) {
    case 'text':
      return <LongText text={block.text} />;
    case 'thinking':
      return (
        <details className="block" open={block.text.length < 600}>
          <summary className="muted">Thinking{block.redacted ? ' (encrypted by the provider)' : ''}</summary>
          {block.text && <div className="thinking">{block.text}</div>}
        </details>
      );
    case 'image':
      return (
        <div className="block">
          {block.src ? <img src={block.src} alt={block.description} loading="lazy" /> : <span className="badge">{block.description}</span>}
        </div>
      );
    case 'tool_call':
      return (
        <details className="block" open>
          <summary>
            Tool call <strong className="mono">{block.name}</strong>
            {block.id && <span className="muted small mono"> {block.id}</span>}
          </summary>
          <pre className="code">{block.input}</pre>
        </details>
      );
    case 'tool_result':
      return (
        <details className="block" open={resultLength(block.content) < 1500}>
          <summary>
            Tool result{block.name ? ` of ${block.name}` : ''}
            {block.id && <span className="muted small mono"> {block.id}</span>}
            {block.isError && <span className="badge error"> error</span>}
          </summary>
          {block.content.map((inner, index) => (
            // biome-ignore lint/suspicious/noArrayIndexKey: blocks of a stored message never reorder
            <BlockView key={index} block={inner} />
          ))}
        </details>
      );
    case 'other':
      return (
        <details className="block">
          <summary className="muted">{block.label}</summary>
          <pre className="code">{block.json}</pre>
        </details>
      );
  }
}

/**
 * A text block, cut to its first lines while it is long: a system prompt of Claude Code runs to thousands of
 * pixels and would push the turns off the page.
 */
function LongText({ text }: { text: string }) {
  const [expanded, setExpanded] = useState(false);
  const lines = text.split('\n');
  const long = lines.length > COLLAPSE_LINES || text.length > COLLAPSE_CHARS;
  if (!long) return <div className="block text">{text}</div>;
  const preview = lines.slice(0, COLLAPSE_LINES).join('\n').slice(0, COLLAPSE_CHARS);
  return (
    <div className="block">
      <div className="text">{expanded ? text : `${preview}…`}</div>
      <button type="button" style={{ marginTop: 6 }} aria-expanded={expanded} onClick={() => setExpanded(!expanded)}>
        {expanded
          ? 'Show less'
          : `Show all ${lines.length.toLocaleString('en-US')} lines (${text.length.toLocaleString('en-US')} characters)`}
      </button>
    </div>
  );
}

function resultLength(blocks: Block[]): number {
  return blocks.reduce((total, block) => total + (block.kind === 'text' ? block.text.length : 200), 0);
}
