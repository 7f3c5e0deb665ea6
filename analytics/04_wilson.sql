-- wilson_low(k, n), wilson_high(k, n): the 95 % Wilson score interval of a success rate of k
-- successes in n trials (z = 1.96), NULL when n is 0 or NULL. Unlike p ± 1.96·sqrt(p(1-p)/n) it
-- stays within 0-1 and does not collapse to a point at 0 % or 100 % on small nights.
CREATE OR REPLACE MACRO wilson_low(k, n) AS CASE WHEN n > 0 AND k = 0 THEN 0.0 WHEN n > 0 THEN
    greatest(0.0, ((k / n) + 1.9208 / n
        - 1.96 * sqrt((k / n) * (1 - k / n) / n + 0.9604 / (n * n))) / (1 + 3.8416 / n))
END;
CREATE OR REPLACE MACRO wilson_high(k, n) AS CASE WHEN n > 0 AND k = n THEN 1.0 WHEN n > 0 THEN
    least(1.0, ((k / n) + 1.9208 / n
        + 1.96 * sqrt((k / n) * (1 - k / n) / n + 0.9604 / (n * n))) / (1 + 3.8416 / n))
END;
