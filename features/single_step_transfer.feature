@needs-pbx-sim
@cap-single-step-transfer
Feature: Single-step transfer
  Scenario: alice hands bob over to carol
    Given alice is signed in
    And carol is signed in
    When alice dials bob
    And bob answers at the desk phone
    Then alice sees the call as established
    When alice transfers the call to carol
    Then alice sees the call as transferred
    And carol sees a call from bob
    And carol's desk phone rings
