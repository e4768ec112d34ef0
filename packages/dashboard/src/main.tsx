import { QueryClient, QueryClientProvider } from '@tanstack/react-query';
import { StrictMode } from 'react';
import { createRoot } from 'react-dom/client';
import { App } from './app.js';
import { applyStoredTheme } from './lib/theme.js';
import 'uplot/dist/uPlot.min.css';
import './styles.css';

applyStoredTheme();

const queryClient = new QueryClient({
  defaultOptions: {
    queries: {
      staleTime: 15_000,
      refetchOnWindowFocus: true,
      // An endpoint this server lacks, or an id that does not exist, will not appear on a retry.
      retry: (failureCount, error) =>
        failureCount < 2 && !(error instanceof Error && 'status' in error && (error as { status: number }).status >= 400),
    },
  },
});

createRoot(document.getElementById('root')!).render(
  <StrictMode>
    <QueryClientProvider client={queryClient}>
      <App />
    </QueryClientProvider>
  </StrictMode>,
);
